#!/usr/bin/env bash
# `make demo`: the main job on the sample data shipped in tests/fixtures/demo, with the same code the
# Lambdas run. Usage: demo.sh PATH/TO/groundwork
set -euo pipefail
GW=${1:?usage: demo.sh PATH/TO/groundwork}
DEMO=$(cd "$(dirname "$0")/../fixtures/demo" && pwd)
CROWD=$(cd "$(dirname "$0")/../../data/crowd/welinder2010_bluebirds" && pwd)
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$1"; }

say "1. Validate the input manifest of a chained job (4 data objects)"
"$GW" manifest validate "$DEMO/input.manifest"

say "2. Pre-annotation for the chained job 'animals-chain-1' (label attribute name 'animal')"
echo "   object 2 is already labeled under 'animal' -> isHumanAnnotationRequired: false"
echo "   object 3 only carries failure metadata     -> labeled again"
"$GW" pre --label-attribute-name animal --task-type ImageMultiClass --label-categories "$DEMO/labels.json" \
  --event "$DEMO/pre-event-1.json" --event "$DEMO/pre-event-2.json" --event "$DEMO/pre-event-3.json" \
  | grep -E '"taskObject"|"isHumanAnnotationRequired"'

say "3. Annotation consolidation of a 13-object batch (3 workers per object, one unreliable worker)"
"$GW" consolidate --request "$DEMO/consolidation-request.json" --payload "$DEMO/consolidation-payload.json" \
  --store "$OUT/store" --worker-quality --now 2024-03-01T10:05:00Z > "$OUT/response.json"
python3 - "$OUT/response.json" <<'PY'
import json, sys
entries = json.load(open(sys.argv[1]))
print(f"   {len(entries)} response entries (one per payload object)")
for e in entries:
    c = e["consolidatedAnnotation"]["content"]
    m = c["animal-metadata"]
    if "animal" in c:
        print(f"   object {e['datasetObjectId']:>2}: {m['class-name']:<5} confidence {m['confidence']:.2f}")
    else:
        print(f"   object {e['datasetObjectId']:>2}: no label ({m['failure-reason']})")
PY
echo "   worker quality kept for the next batches in:"
find "$OUT/store" -name '*.json' | sed "s|$OUT/store/|   s3://|"

say "4. Truth inference on a real crowd set (Welinder 2010 bluebirds, 39 workers x 108 images)"
"$GW" consolidate --labels "$CROWD/labels.csv" --out "$OUT/bluebirds.csv"
python3 - "$OUT/bluebirds.csv" "$CROWD/gold.csv" <<'PY'
import csv, sys
pred = {r["task"]: r["label"] for r in csv.DictReader(open(sys.argv[1]))}
gold = {r["task"]: r["label"] for r in csv.DictReader(open(sys.argv[2]))}
right = sum(pred.get(t) == g for t, g in gold.items())
print(f"   accuracy {right / len(gold):.3f} on {len(gold)} images (crowd-kit: majority vote 0.759, Dawid-Skene 0.889)")
PY
echo
echo "Done. The same code runs in the Lambdas: see README.md for deploying template.yaml."

#!/usr/bin/env bash
# `make bench-process`: `groundwork consolidate --labels` against a whole Python process that reads the
# same CSV, runs crowd-kit's DawidSkene and writes the labels, each side started fresh, interleaved, as a
# user runs them. Sets: the bench generator's 50k- and 500k-label synthetic CSVs (4 classes, seed 0) and
# the real crowd sets in data/crowd.
set -euo pipefail
source "$(dirname "$0")/crowdkit-env.sh"
REPEAT=${REPEAT:-5}
mkdir -p "$bench_root/process"
cargo build --release -p groundwork-cli --quiet
OURS="$CARGO_TARGET_DIR/release/groundwork"
for n in 10000 100000; do
  [ -f "$bench_root/synth-$n/labels.csv" ] || "$PY" "$crowdkit_py" gen --tasks "$n" --classes 4 --seed 0 --out "$bench_root/synth-$n" >/dev/null
done
sets=("synth-10k:$bench_root/synth-10000" "synth-100k:$bench_root/synth-100000")
if [ -z "${SYNTHETIC_ONLY:-}" ]; then
  for d in "$crowd_dir"/*/; do sets+=("$(basename "$d"):${d%/}"); done
fi
printf '| set | labels | ours (s) | crowd-kit process (s) | speed-up | ours peak RSS (MiB) | crowd-kit peak RSS (MiB) | ours acc | crowd-kit acc |\n'
printf '|---|---|---|---|---|---|---|---|---|\n'
for entry in "${sets[@]}"; do
  name=${entry%%:*}; dir=${entry#*:}
  "$PY" "$root/tests/scripts/crowdkit/process_bench.py" --name "$name" --ours "$OURS" --python "$PY" \
    --labels "$dir/labels.csv" --gold "$dir/gold.csv" --work "$bench_root/process" --repeat "$REPEAT"
done

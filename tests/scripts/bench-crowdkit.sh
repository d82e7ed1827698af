#!/usr/bin/env bash
# `make bench-crowdkit`: ours and crowd-kit on the very same CSV files, one after the other in one run, so
# machine noise cancels out in the ratio. Sets: the bench generator's synthetic 10k (50k labels) and 100k
# (500k labels) sets, 4 classes, seed 0, and the real crowd sets in data/crowd.
set -euo pipefail
source "$(dirname "$0")/crowdkit-env.sh"
work=$bench_root
REPEAT=${REPEAT:-3}
mkdir -p "$work"
cargo build --release -p groundwork --example crowd_bench --quiet
OURS="$CARGO_TARGET_DIR/release/examples/crowd_bench"

for n in 10000 100000; do
  [ -f "$work/synth-$n/labels.csv" ] || "$PY" "$crowdkit_py" gen --tasks "$n" --classes 4 --seed 0 --out "$work/synth-$n" >/dev/null
done

sets=("synth-10k:$work/synth-10000" "synth-100k:$work/synth-100000")
for d in "$crowd_dir"/*/; do sets+=("$(basename "$d"):${d%/}"); done

printf '| set | labels | ours DS (s) | crowd-kit DS (s) | speed-up | ours DS acc | crowd-kit DS acc | ours ECE | ours MV (s) | crowd-kit MV (s) |\n'
printf '|---|---|---|---|---|---|---|---|---|---|\n'
for entry in "${sets[@]}"; do
  name=${entry%%:*}; dir=${entry#*:}
  # Both sides best of $REPEAT runs in one process: warm against warm (crowd-kit's first call also pays
  # one-off costs that a single run would count against it).
  ours=$("$OURS" "$dir/labels.csv" "$dir/gold.csv" --repeat "$REPEAT")
  theirs=$("$PY" "$crowdkit_py" csv --labels "$dir/labels.csv" --gold "$dir/gold.csv" --only MajorityVote DawidSkene --repeat "$REPEAT" 2>/dev/null)
  labels=$(grep -o 'labels=[0-9]*' <<<"$ours" | head -1 | cut -d= -f2)
  read -r o_ds_t o_ds_acc o_ds_ece < <(awk '/groundwork dawid-skene/ {print $3, $4, $5}' <<<"$ours")
  o_mv_t=$(awk '/groundwork majority-vote/ {print $3}' <<<"$ours")
  read -r c_ds_t c_ds_acc < <(awk '$1=="DawidSkene" || $1 ~ /^DawidSkene/ {print $2, $3; exit}' <<<"$theirs")
  c_mv_t=$(awk '$1 ~ /^MajorityVote/ {print $2; exit}' <<<"$theirs")
  ratio=$(awk -v a="$c_ds_t" -v b="$o_ds_t" 'BEGIN { if (b > 0) printf "%.0f×", a / b; else print "–" }')
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
    "$name" "$labels" "$o_ds_t" "$c_ds_t" "$ratio" "$o_ds_acc" "$c_ds_acc" "$o_ds_ece" "$o_mv_t" "$c_mv_t"
done

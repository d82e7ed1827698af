#!/usr/bin/env bash
# `make bench-seg`: our segmentation consolidation against crowd-kit's SegmentationMajorityVote on the
# very same masks (crowd-kit's generator: 100 images of 256² × 5 workers, seed 0), side by side in one
# run. Both sides are warm (best of several calls in one process); the rounds alternate ours and theirs
# so that the machine's load falls on both, and the best of each side over the rounds gives the ratio.
#   ROUNDS (3), REPEAT_OURS (20), REPEAT_THEIRS (3), IMAGES (100), SIZE (256), OVERLAP (5)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/crowdkit-env.sh"
ROUNDS=${ROUNDS:-3}
REPEAT_OURS=${REPEAT_OURS:-20}
REPEAT_THEIRS=${REPEAT_THEIRS:-3}
IMAGES=${IMAGES:-100}
SIZE=${SIZE:-256}
OVERLAP=${OVERLAP:-5}
work=$bench_root/seg-$IMAGES-$SIZE-$OVERLAP-seed0
if [ ! -f "$work/done" ]; then
  rm -rf "$work"
  "$PY" "$crowdkit_py" gen-seg --images "$IMAGES" --overlap "$OVERLAP" --size "$SIZE" \
    --seed 0 --out "$work" >/dev/null
  touch "$work/done"
fi
cargo build --release -p groundwork --example seg_bench --quiet
OURS="$CARGO_TARGET_DIR/release/examples/seg_bench"

best() { sort -g | head -1; }
ours_times=() theirs_times=() plain_times=()
for round in $(seq "$ROUNDS"); do
  ours=$("$OURS" "$work" --repeat "$REPEAT_OURS")
  theirs=$("$PY" "$here/seg_mv.py" --dir "$work" --repeat "$REPEAT_THEIRS" 2>/dev/null)
  o_t=$(grep -o 'time_s=[0-9.]*' <<<"$ours" | cut -d= -f2)
  c_t=$(grep -o 'time_s=[0-9.]*' <<<"$theirs" | cut -d= -f2)
  o_iou=$(grep -o 'mean_IoU_vs_gold=[0-9.]*' <<<"$ours" | cut -d= -f2)
  c_iou=$(grep -o 'mean_IoU_vs_gold=[0-9.]*' <<<"$theirs" | cut -d= -f2)
  p_t=$(grep -o 'plain_vote_s=[0-9.]*' <<<"$ours" | cut -d= -f2)
  p_iou=$(grep -o 'plain_vote_IoU=[0-9.]*' <<<"$ours" | cut -d= -f2)
  printf 'round %s: ours %s s, crowd-kit SegmentationMajorityVote %s s (%s×)\n' "$round" "$o_t" "$c_t" \
    "$(awk -v a="$c_t" -v b="$o_t" 'BEGIN { printf "%.1f", a / b }')"
  ours_times+=("$o_t") theirs_times+=("$c_t") plain_times+=("$p_t")
done
o_best=$(printf '%s\n' "${ours_times[@]}" | best)
c_best=$(printf '%s\n' "${theirs_times[@]}" | best)
p_best=$(printf '%s\n' "${plain_times[@]}" | best)
printf '\n| masks | ours (s) | crowd-kit MV (s) | speed-up | ours mIoU | crowd-kit MV mIoU |\n|---|---|---|---|---|---|\n'
printf '| %s images %s² × %s workers | %s | %s | %s× | %s | %s |\n' "$IMAGES" "$SIZE" "$OVERLAP" "$o_best" "$c_best" \
  "$(awk -v a="$c_best" -v b="$o_best" 'BEGIN { printf "%.1f", a / b }')" "$o_iou" "$c_iou"
printf '\nFor scale, a straightforward per-pixel majority vote in Rust on the same masks: %s s (%s× crowd-kit), mIoU %s.\n' \
  "$p_best" "$(awk -v a="$c_best" -v b="$p_best" 'BEGIN { printf "%.1f", a / b }')" "$p_iou"

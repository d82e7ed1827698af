# Sourced by the side-by-side bench scripts (bench-crowdkit.sh, bench-seg.sh): where the clone and
# ../shared are, the cargo target dir, and crowd-kit's pinned venv (created on first use by
# ../shared/bench/setup.sh). Sets root, shared, CARGO_TARGET_DIR, bench_root and PY.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
shared=$(cd "$root/../shared" && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/groundwork-target}
bench_root=${BENCH_DIR:-$HOME/.cache/groundwork-bench}
venv=${CROWDKIT_VENV:-$HOME/.cache/groundwork-crowdkit}
[ -x "$venv/bin/python" ] || bash "$shared/bench/setup.sh"
PY="$venv/bin/python"

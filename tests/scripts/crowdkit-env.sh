# Sourced by the side-by-side bench scripts (bench-crowdkit.sh, bench-seg.sh): where the clone, its crowd
# sets and the crowd-kit bench script are, the cargo target dir, and crowd-kit's pinned venv (created on
# first use by tests/scripts/crowdkit/setup.sh). Sets root, crowd_dir, crowdkit_py, CARGO_TARGET_DIR,
# bench_root and PY.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
crowd_dir="$root/data/crowd"
crowdkit_py="$root/tests/scripts/crowdkit/crowdkit_bench.py"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/groundwork-target}
bench_root=${BENCH_DIR:-$HOME/.cache/groundwork-bench}
venv=${CROWDKIT_VENV:-$HOME/.cache/groundwork-crowdkit}
[ -x "$venv/bin/python" ] || bash "$root/tests/scripts/crowdkit/setup.sh"
PY="$venv/bin/python"

"""Whole process against whole process: `groundwork consolidate --labels` and a Python process running
crowd-kit's DawidSkene on the same CSV, each started fresh, interleaved `--repeat` times. Prints one
Markdown row: the fastest wall time of each side, the ratio, the larger peak RSS of each (from the
child's own rusage, so no `time` binary is needed) and each side's accuracy against gold."""
import argparse
import csv
import os
import subprocess
import sys
import time


def run(cmd):
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    stderr = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{cmd[0]} failed: {stderr}")
    # ru_maxrss is in KiB on Linux.
    return seconds, usage.ru_maxrss / 1024.0


def accuracy(out_csv, gold):
    with open(out_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    right = sum(1 for r in rows if gold.get(r["task"]) == r["label"])
    return right / max(1, len(gold))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--name", required=True)
    p.add_argument("--ours", required=True, help="the groundwork binary")
    p.add_argument("--python", required=True)
    p.add_argument("--labels", required=True)
    p.add_argument("--gold", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--repeat", type=int, default=5)
    a = p.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    ours_out = os.path.join(a.work, f"{a.name}-ours.csv")
    theirs_out = os.path.join(a.work, f"{a.name}-crowdkit.csv")
    ours_cmd = [a.ours, "consolidate", "--labels", a.labels, "--out", ours_out]
    theirs_cmd = [a.python, os.path.join(here, "crowdkit_consolidate.py"), "--labels", a.labels, "--out", theirs_out]
    ours, theirs = [], []
    for _ in range(a.repeat):
        ours.append(run(ours_cmd))
        theirs.append(run(theirs_cmd))
    with open(a.gold, newline="") as f:
        gold = {r["task"]: r["label"] for r in csv.DictReader(f)}
    o_t, t_t = min(s for s, _ in ours), min(s for s, _ in theirs)
    o_m, t_m = max(m for _, m in ours), max(m for _, m in theirs)
    labels = sum(1 for _ in open(a.labels)) - 1
    print(f"| {a.name} | {labels} | {o_t:.3f} | {t_t:.3f} | {t_t / o_t:.0f}× | {o_m:.0f} | {t_m:.0f} | "
          f"{accuracy(ours_out, gold):.4f} | {accuracy(theirs_out, gold):.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What a crowd-kit user runs as one process: read a task,worker,label CSV, aggregate with Dawid-Skene,
write task,label. The peer side of `make bench-process` (tests/scripts/bench-process.sh)."""
import argparse
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--labels", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    import pandas as pd
    from crowdkit.aggregation import DawidSkene

    frame = pd.read_csv(args.labels, dtype=str)
    frame.columns = ["task", "worker", "label"]
    labels = DawidSkene(n_iter=100).fit_predict(frame)
    labels.rename("label").to_csv(args.out, index_label="task")
    return 0


if __name__ == "__main__":
    sys.exit(main())

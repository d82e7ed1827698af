#!/usr/bin/env python3
"""crowd-kit's SegmentationMajorityVote alone on a folder written by `crowdkit_bench.py gen-seg`, for
`bench-seg.sh`: the masks are loaded the way `crowdkit_bench.py seg-dir` loads them (value > 127) and
only `SegmentationMajorityVote().fit_predict(df)` is timed, best of --repeat calls in this one process.
Prints `crowd-kit time_s=… mean_IoU_vs_gold=… images=…`.
"""
import argparse
import os
import time

import numpy as np
import pandas as pd
from PIL import Image
from crowdkit.aggregation import SegmentationMajorityVote


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--repeat", type=int, default=3)
    a = parser.parse_args()
    rows, gold = [], {}
    for task in sorted(os.listdir(a.dir)):
        d = os.path.join(a.dir, task)
        if not os.path.isdir(d):
            continue
        for f in sorted(os.listdir(d)):
            m = np.asarray(Image.open(os.path.join(d, f))) > 127
            if f == "gold.png":
                gold[task] = m
            else:
                rows.append((task, f[:-4], m))
    df = pd.DataFrame(rows, columns=["task", "worker", "segmentation"])
    best, pred = float("inf"), None
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        pred = SegmentationMajorityVote().fit_predict(df)
        best = min(best, time.perf_counter() - t0)
    ious = [(m & gold[t]).sum() / max((m | gold[t]).sum(), 1) for t, m in pred.items()]
    print(f"crowd-kit time_s={best:.5f} mean_IoU_vs_gold={float(np.mean(ious)):.4f} images={len(gold)}")


if __name__ == "__main__":
    main()

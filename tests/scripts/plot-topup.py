#!/usr/bin/env python3
"""Accuracy against answers per object, one panel per crowd set: our calibrated-confidence stopping
rule, the Toloka-style weighted-vote-share rule, and all answers with our engine.

    python plot-topup.py CURVES.csv OUT.png      (CURVES.csv from `examples/topup.rs --csv`)

Needs matplotlib (`make bench-topup` installs it into the project's tool venv).
"""
import csv
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(curves_path: str, out_path: str) -> None:
    curves = defaultdict(lambda: defaultdict(list))
    with open(curves_path, newline="") as f:
        for row in csv.DictReader(f):
            curves[row["set"]][row["rule"]].append((float(row["mean_answers"]), float(row["accuracy"])))
    sets = sorted(curves)
    cols = 3
    rows = (len(sets) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.3 * rows), squeeze=False)
    for ax, name in zip(axes.flat, sets):
        for rule, style, label in [("ours", "o-", "ours: confidence ≥ target"),
                                   ("toloka", "s--", "Toloka-style: weighted vote share ≥ target")]:
            points = sorted(curves[name][rule])
            if points:
                ax.plot([p[0] for p in points], [p[1] for p in points], style, ms=3.5, label=label)
        for answers, accuracy in curves[name]["all"]:
            ax.axhline(accuracy, color="grey", lw=0.8, ls=":")
            ax.plot([answers], [accuracy], "k*", ms=8, label="all answers")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("answers per object", fontsize=8)
        ax.set_ylabel("accuracy", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(sets):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(out_path, dpi=110)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])

#!/usr/bin/env python3
"""Side-by-side anchor: crowd-kit's aggregation methods, timed and scored on the same data as ours.

Set-up (once):   bash setup.sh   (a venv at ~/.cache/groundwork-crowdkit with pinned crowd-kit; see README.md)
Commands:
    python crowdkit_bench.py gen     --tasks 10000 --overlap 5 --workers 200 --classes 4 --seed 0 --out DIR
        writes DIR/labels.csv (task,worker,label) and DIR/gold.csv (task,label): feed the same files to ours
    python crowdkit_bench.py csv     --labels DIR/labels.csv --gold DIR/gold.csv [--only DawidSkene MajorityVote]
        times every crowd-kit method on a labels/gold CSV pair (any set under data/crowd/ of the repository too)
    python crowdkit_bench.py synth   --tasks 10000 --overlap 5 --workers 200 --classes 4 --seed 0
    python crowdkit_bench.py scale   --overlap 5 --workers 200 --classes 4
    python crowdkit_bench.py multilabel --tasks 10000 --overlap 5 --workers 200 --labels 6
    python crowdkit_bench.py seg     --images 100 --overlap 5 --size 256
    python crowdkit_bench.py gen-seg --images 100 --overlap 5 --size 256 --seed 0 --out DIR
        writes DIR/<task>/<worker>.png masks (0/255) and DIR/<task>/gold.png: feed the same masks to ours
    python crowdkit_bench.py seg-dir --dir DIR      crowd-kit's segmentation methods on such a folder

Synthetic generator (classification):
  * pool of W workers; each worker has a KxK confusion matrix drawn by type:
      65% "good"   : diagonal accuracy ~ U(0.70, 0.95), off-diagonal mass Dirichlet(1)
      15% "noisy"  : diagonal accuracy ~ U(1/K, 0.60)
      10% "spammer": uniform random answer (rows = 1/K)
      10% "biased" : answers one fixed class with prob 0.7, otherwise correct-ish
  * worker activity is heavy-tailed (lognormal weights) as on real crowds;
    each task draws `overlap` distinct workers proportional to activity.
  * true class prior is mildly imbalanced (Dirichlet(5)).
Timing is wall clock (time.perf_counter) of fit_predict on a pandas DataFrame
(task, worker, label), best of --repeat runs, single process. Print format: one row per method,
`method time_s accuracy`.
"""
import argparse
import platform
import sys
import time

import numpy as np
import pandas as pd

import crowdkit
from crowdkit.aggregation import (
    GLAD,
    KOS,
    MACE,
    MMSR,
    BinaryRelevance,
    DawidSkene,
    MajorityVote,
    OneCoinDawidSkene,
    SegmentationEM,
    SegmentationMajorityVote,
    SegmentationRASA,
    Wawa,
    ZeroBasedSkill,
)


def make_workers(rng, n_workers, k):
    cms = np.zeros((n_workers, k, k))
    types = rng.choice(["good", "noisy", "spammer", "biased"], size=n_workers,
                       p=[0.65, 0.15, 0.10, 0.10])
    for w, t in enumerate(types):
        for c in range(k):
            if t == "spammer":
                row = np.full(k, 1.0 / k)
            elif t == "biased":
                fav = w % k
                row = np.zeros(k)
                row[fav] += 0.7
                rest = rng.dirichlet(np.ones(k)) * 0.3
                row += rest
            else:
                acc = rng.uniform(0.70, 0.95) if t == "good" else rng.uniform(1.0 / k, 0.60)
                off = rng.dirichlet(np.ones(k - 1)) * (1 - acc)
                row = np.insert(off, c, acc)
            cms[w, c] = row / row.sum()
    return cms, types


def make_classification(n_tasks, overlap, n_workers, k, seed):
    rng = np.random.default_rng(seed)
    cms, types = make_workers(rng, n_workers, k)
    prior = rng.dirichlet(np.full(k, 5.0))
    truth = rng.choice(k, size=n_tasks, p=prior)
    activity = rng.lognormal(0, 1, size=n_workers)
    activity /= activity.sum()
    rows_t, rows_w, rows_l = [], [], []
    for t in range(n_tasks):
        ws = rng.choice(n_workers, size=overlap, replace=False, p=activity)
        for w in ws:
            lab = rng.choice(k, p=cms[w, truth[t]])
            rows_t.append(t)
            rows_w.append(w)
            rows_l.append(lab)
    df = pd.DataFrame({"task": rows_t, "worker": [f"w{w}" for w in rows_w],
                       "label": rows_l})
    gold = pd.Series(truth, index=pd.Index(np.arange(n_tasks), name="task"))
    return df, gold, types


def timed(fn, repeat):
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def classification_methods(k):
    m = [
        ("MajorityVote", lambda: MajorityVote()),
        ("Wawa", lambda: Wawa()),
        ("ZeroBasedSkill", lambda: ZeroBasedSkill()),
        ("OneCoinDawidSkene(n_iter=100)", lambda: OneCoinDawidSkene(n_iter=100)),
        ("DawidSkene(n_iter=100)", lambda: DawidSkene(n_iter=100)),
        ("DawidSkene(n_iter=100,tol=0)", lambda: DawidSkene(n_iter=100, tol=0.0)),
        ("GLAD(n_iter=100)", lambda: GLAD(n_iter=100)),
        ("MACE(defaults)", lambda: MACE()),
        ("MMSR(defaults)", lambda: MMSR()),
    ]
    if k == 2:
        m.append(("KOS(n_iter=100)", lambda: KOS(n_iter=100)))
    return m


def run_classification(df, gold, k, repeat, skip=()):
    print(f"{'method':34s} {'time_s':>9s} {'accuracy':>9s}")
    res = {}
    for name, ctor in classification_methods(k):
        if any(s in name for s in skip):
            continue
        try:
            t, pred = timed(lambda: ctor().fit_predict(df), repeat)
            common = gold.index.intersection(pred.index)
            acc = float((pred.loc[common].astype(str).values ==
                         gold.loc[common].astype(str).values).mean())
            print(f"{name:34s} {t:9.3f} {acc:9.4f}", flush=True)
            res[name] = (t, acc)
        except Exception as e:  # noqa: BLE001
            print(f"{name:34s} FAILED: {type(e).__name__}: {e}", flush=True)
    return res


def header():
    print(f"# python {platform.python_version()} crowd-kit {crowdkit.__version__ if hasattr(crowdkit, '__version__') else '?'} "
          f"numpy {np.__version__} pandas {pd.__version__} on {platform.machine()} {platform.processor() or ''}")


def cmd_synth(a):
    df, gold, types = make_classification(a.tasks, a.overlap, a.workers, a.classes, a.seed)
    header()
    print(f"# synthetic: tasks={a.tasks} overlap={a.overlap} labels={len(df)} "
          f"workers={df.worker.nunique()} classes={a.classes} seed={a.seed} "
          f"worker types={dict(zip(*np.unique(types, return_counts=True)))}")
    run_classification(df, gold, a.classes, a.repeat)


def cmd_scale(a):
    header()
    for n in [1000, 10000, 100000]:
        df, gold, _ = make_classification(n, a.overlap, a.workers, a.classes, a.seed)
        print(f"\n# scale: tasks={n} labels={len(df)} classes={a.classes}")
        print(f"{'method':34s} {'time_s':>9s} {'accuracy':>9s}")
        for name, ctor in [("MajorityVote", lambda: MajorityVote()),
                           ("Wawa", lambda: Wawa()),
                           ("DawidSkene(n_iter=100)", lambda: DawidSkene(n_iter=100)),
                           ("OneCoinDawidSkene(n_iter=100)", lambda: OneCoinDawidSkene(n_iter=100))]:
            t, pred = timed(lambda: ctor().fit_predict(df), 1)
            acc = float((pred.sort_index().values == gold.sort_index().values).mean())
            print(f"{name:34s} {t:9.3f} {acc:9.4f}", flush=True)


def cmd_multilabel(a):
    rng = np.random.default_rng(a.seed)
    L = a.labels
    names = [f"c{i}" for i in range(L)]
    truth = rng.random((a.tasks, L)) < 0.3
    acc = np.clip(rng.normal(0.85, 0.08, size=a.workers), 0.5, 0.99)
    activity = rng.lognormal(0, 1, size=a.workers)
    activity /= activity.sum()
    rows = []
    for t in range(a.tasks):
        for w in rng.choice(a.workers, size=a.overlap, replace=False, p=activity):
            flip = rng.random(L) > acc[w]
            ans = truth[t] ^ flip
            rows.append((t, f"w{w}", [names[i] for i in np.flatnonzero(ans)]))
    df = pd.DataFrame(rows, columns=["task", "worker", "label"])
    header()
    print(f"# multilabel: tasks={a.tasks} overlap={a.overlap} workers={a.workers} labels_per_task_vocab={L}")
    gold = {t: set(names[i] for i in np.flatnonzero(truth[t])) for t in range(a.tasks)}
    for name, ctor in [("BinaryRelevance(MajorityVote)", lambda: BinaryRelevance(MajorityVote())),
                       ("BinaryRelevance(DawidSkene(n_iter=100))", lambda: BinaryRelevance(DawidSkene(n_iter=100)))]:
        t, pred = timed(lambda: ctor().fit_predict(df), a.repeat)
        exact = np.mean([set(pred.get(tk, [])) == gold[tk] for tk in range(a.tasks)])
        print(f"{name:40s} time_s={t:8.3f} exact_match={exact:.4f}", flush=True)


def make_segmentation(a):
    rng = np.random.default_rng(a.seed)
    H = W = a.size
    yy, xx = np.mgrid[0:H, 0:W]
    rows, gold = [], {}
    for img in range(a.images):
        cy, cx = rng.uniform(0.3, 0.7, 2) * H
        ry, rx = rng.uniform(0.1, 0.3, 2) * H
        gt = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        gold[img] = gt
        for w in range(a.overlap):
            quality = rng.uniform(0.6, 1.0)
            sy, sx = rng.normal(0, (1 - quality) * 0.2 * H, 2)
            sc = rng.normal(1, (1 - quality) * 0.3)
            m = ((yy - cy - sy) / (ry * sc)) ** 2 + ((xx - cx - sx) / (rx * sc)) ** 2 <= 1
            rows.append((img, f"w{w}", m))
    return pd.DataFrame(rows, columns=["task", "worker", "segmentation"]), gold


def cmd_seg(a):
    df, gold = make_segmentation(a)
    run_segmentation(df, gold, f"images={a.images} overlap={a.overlap} size={a.size}x{a.size}", a.repeat)


def cmd_gen_seg(a):
    """Writes DIR/<task>/<worker>.png (0/255 grayscale masks) and DIR/<task>/gold.png."""
    import os
    from PIL import Image
    df, gold = make_segmentation(a)
    for (task, worker, mask) in df.itertuples(index=False):
        d = os.path.join(a.out, str(task))
        os.makedirs(d, exist_ok=True)
        Image.fromarray((mask * 255).astype(np.uint8)).save(os.path.join(d, f"{worker}.png"))
    for task, g in gold.items():
        Image.fromarray((g * 255).astype(np.uint8)).save(os.path.join(a.out, str(task), "gold.png"))
    print(f"wrote {len(df)} worker masks for {len(gold)} images to {a.out}")


def cmd_seg_dir(a):
    """Runs crowd-kit's segmentation methods on a folder written by gen-seg (or any folder of that layout)."""
    import os
    from PIL import Image
    rows, gold = [], {}
    for task in sorted(os.listdir(a.dir)):
        d = os.path.join(a.dir, task)
        for f in sorted(os.listdir(d)):
            m = np.asarray(Image.open(os.path.join(d, f))) > 127
            if f == "gold.png":
                gold[task] = m
            else:
                rows.append((task, f[:-4], m))
    df = pd.DataFrame(rows, columns=["task", "worker", "segmentation"])
    run_segmentation(df, gold, f"dir={a.dir} images={len(gold)}", a.repeat)


def run_segmentation(df, gold, desc, repeat):
    header()
    print(f"# segmentation: {desc}")

    def miou(pred):
        ious = []
        for t, m in pred.items():
            g = gold[t]
            ious.append((m & g).sum() / max((m | g).sum(), 1))
        return float(np.mean(ious))

    for name, ctor in [("SegmentationMajorityVote", lambda: SegmentationMajorityVote()),
                       ("SegmentationRASA", lambda: SegmentationRASA()),
                       ("SegmentationEM", lambda: SegmentationEM())]:
        t, pred = timed(lambda: ctor().fit_predict(df), repeat)
        print(f"{name:28s} time_s={t:8.3f} mean_IoU_vs_gold={miou(pred):.4f}", flush=True)


def cmd_gen(a):
    import os
    df, gold, types = make_classification(a.tasks, a.overlap, a.workers, a.classes, a.seed)
    os.makedirs(a.out, exist_ok=True)
    df.to_csv(os.path.join(a.out, "labels.csv"), index=False)
    gold.rename("label").to_csv(os.path.join(a.out, "gold.csv"))
    print(f"wrote {len(df)} labels for {a.tasks} tasks ({a.classes} classes) to {a.out}")


def cmd_real(a):
    df = pd.read_csv(a.labels, sep=a.sep)
    g = pd.read_csv(a.gold, sep=a.sep)
    df.columns = ["task", "worker", "label"][: len(df.columns)]
    g.columns = ["task", "label"][: len(g.columns)]
    df["label"] = df["label"].astype(str)
    gold = g.set_index("task")["label"].astype(str)
    k = df["label"].nunique()
    header()
    print(f"# real: {a.labels} labels={len(df)} tasks={df.task.nunique()} workers={df.worker.nunique()} "
          f"classes={k} gold={len(gold)}")
    if a.only:
        keep = tuple(a.only)
        skip = tuple(n for n, _ in classification_methods(k) if not n.startswith(keep))
    else:
        skip = tuple(a.skip or ())
    run_classification(df, gold, k, a.repeat, skip=skip)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("synth")
    s.add_argument("--tasks", type=int, default=10000)
    s.add_argument("--overlap", type=int, default=5)
    s.add_argument("--workers", type=int, default=200)
    s.add_argument("--classes", type=int, default=4)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--repeat", type=int, default=1)
    s = sub.add_parser("scale")
    s.add_argument("--overlap", type=int, default=5)
    s.add_argument("--workers", type=int, default=200)
    s.add_argument("--classes", type=int, default=4)
    s.add_argument("--seed", type=int, default=0)
    s = sub.add_parser("multilabel")
    s.add_argument("--tasks", type=int, default=10000)
    s.add_argument("--overlap", type=int, default=5)
    s.add_argument("--workers", type=int, default=200)
    s.add_argument("--labels", type=int, default=6)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--repeat", type=int, default=1)
    s = sub.add_parser("seg")
    s.add_argument("--images", type=int, default=100)
    s.add_argument("--overlap", type=int, default=5)
    s.add_argument("--size", type=int, default=256)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--repeat", type=int, default=1)
    s = sub.add_parser("gen-seg")
    s.add_argument("--images", type=int, default=100)
    s.add_argument("--overlap", type=int, default=5)
    s.add_argument("--size", type=int, default=256)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", required=True)
    s = sub.add_parser("seg-dir")
    s.add_argument("--dir", required=True)
    s.add_argument("--repeat", type=int, default=1)
    s = sub.add_parser("gen")
    s.add_argument("--tasks", type=int, default=10000)
    s.add_argument("--overlap", type=int, default=5)
    s.add_argument("--workers", type=int, default=200)
    s.add_argument("--classes", type=int, default=4)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", required=True)
    s = sub.add_parser("csv")
    s.add_argument("--labels", required=True)
    s.add_argument("--gold", required=True)
    s.add_argument("--sep", default=",")
    s.add_argument("--repeat", type=int, default=1)
    s.add_argument("--skip", nargs="*")
    s.add_argument("--only", nargs="*")
    a = p.parse_args()
    {"synth": cmd_synth, "scale": cmd_scale, "multilabel": cmd_multilabel,
     "seg": cmd_seg, "gen": cmd_gen, "csv": cmd_real,
     "gen-seg": cmd_gen_seg, "seg-dir": cmd_seg_dir}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())

"""The Indian Pines nested-iteration configuration on a synthetic stand-in.

Writes Indian_pines.mat (145 x 145 pixels, 220 bands, uint16 like the AVIRIS
scene) and Indian_pines_gt.mat (labels 0..16: rectangular fields of 16
classes on background 0) into a folder, then runs the command line exactly as
on the real files:

    layerparallel train --problem indian-pines --data-dir DIR --width 220 --layers 128
        --nested 3 --schedule 200,100,50 --samples 1000 --T 5 ...

Each class has a smooth random mean spectrum; every pixel is its class's
spectrum times a random brightness plus band noise, so the classes overlap
and the task is not trivial. The data are random, not the scene: this shows
that the configuration runs end to end on files of the real shape, and how
long an iteration takes; it says nothing about the accuracy on the real data.

    python bench/indian_pines_synthetic.py DIR [--schedule 200,100,50] [--write-only]
        [more layerparallel train flags, e.g. --log run.jsonl]
"""

import argparse
import os
import subprocess
import sys

import numpy as np

SIDE, BANDS, CLASSES = 145, 220, 16


def write_standin(folder, seed=0):
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    gt = np.zeros((SIDE, SIDE), dtype=np.uint8)
    for _ in range(60):  # fields
        y, x = rng.integers(0, SIDE, size=2)
        h, w = rng.integers(5, 30, size=2)
        gt[y:y + h, x:x + w] = rng.integers(1, CLASSES + 1)
    bands = np.arange(BANDS)
    means = np.zeros((CLASSES + 1, BANDS))
    for c in range(CLASSES + 1):
        for _ in range(4):  # a few smooth absorption/reflection features
            centre, width = rng.uniform(0, BANDS), rng.uniform(10, 60)
            means[c] += rng.uniform(-1, 1) * np.exp(-0.5 * ((bands - centre) / width) ** 2)
    means = 4000 + 1500 * means
    brightness = rng.uniform(0.8, 1.2, size=(SIDE, SIDE, 1))
    cube = means[gt] * brightness + rng.normal(0, 250, size=(SIDE, SIDE, BANDS))
    cube = np.clip(cube, 0, 65535).astype(np.uint16)
    os.makedirs(folder, exist_ok=True)
    savemat(os.path.join(folder, "Indian_pines.mat"), {"indian_pines": cube})
    savemat(os.path.join(folder, "Indian_pines_gt.mat"), {"indian_pines_gt": gt})
    return int((gt > 0).sum())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder")
    ap.add_argument("--schedule", default="200,100,50")
    ap.add_argument("--write-only", action="store_true")
    args, extra = ap.parse_known_args()  # the rest: more `layerparallel train` flags
    extra = [a for a in extra if a != "--"]
    labeled = write_standin(args.folder)
    print(f"wrote a 145 x 145 x 220 stand-in with {labeled} labeled pixels to {args.folder}",
          file=sys.stderr)
    if args.write_only:
        return 0
    cmd = [sys.executable, "-m", "layerparallel", "train", "--problem", "indian-pines",
           "--data-dir", args.folder, "--width", "220", "--layers", "128", "--nested", "3",
           "--schedule", args.schedule, "--samples", "1250", "--validation-fraction", "0.2",
           "--T", "5", "--activation", "smoothrelu", "--init", "uniform", "--magnitude",
           "1e-3", "--optimizer", "lbfgs", "--gamma-tik", "1e-5", "--no-progress",
           "--validate-every", "5", *extra]
    print(" ".join(cmd), file=sys.stderr)
    return subprocess.call(cmd)


if __name__ == "__main__":
    sys.exit(main())

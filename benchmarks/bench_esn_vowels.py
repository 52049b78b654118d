"""JapaneseVowels with an echo state network classifier: pooled reservoir states and a ridge classifier.

The files are read, split and standardised as ``rnnkit train --data.task classify`` does (``ClassifyTask``): a
validation part of 20% is drawn from the training file with the seed. For each pooling (last state, mean over
the steps, both) a random search of ``--trials`` draws over spectral radius, leak, input scaling and ridge is
scored on that validation part; the best setting is refitted on the whole training file and scored once on the
test file. ReservoirPy documents 92.8% (sequence-to-sequence) and 87.3% (sequence-to-vector) on this data.

Usage: ``python benchmarks/bench_esn_vowels.py [--data ../shared/data/japanese_vowels] [--units 500]``
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from rnnkit.config import build_config
from rnnkit.reservoir import ESNClassifier, Reservoir, random_search
from rnnkit.reservoir.search import DEFAULT_SPACE
from rnnkit.tasks import ClassifyTask


def fit(task, settings, units, pooling, xs, ys, seed=0):
    settings = dict(settings)
    ridge = settings.pop("ridge")
    reservoir = Reservoir(task.num_features, units, seed=seed, **settings)
    return ESNClassifier(reservoir, len(task.labels), pooling).fit(xs, ys, ridge=ridge)


def accuracy(model, xs, ys) -> float:
    return float((model.predict(xs).numpy() == np.asarray(ys)).mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" /
                                         "japanese_vowels"))
    p.add_argument("--units", type=int, default=500)
    p.add_argument("--trials", type=int, default=20)
    args = p.parse_args()
    train_file, test_file = Path(args.data) / "JapaneseVowels_TRAIN.ts", Path(args.data) / "JapaneseVowels_TEST.ts"
    split = ClassifyTask(build_config(None, {"data.task": "classify", "data.path": str(train_file),
                                             "data.val_fraction": "0.2"}))
    tx, ty, vx, vy = split.train.inputs, split.train.targets, split.val.inputs, split.val.targets
    best = None
    for pooling in ("last", "mean", "both"):
        results = random_search(lambda s, pooling=pooling: 1 - accuracy(fit(split, s, args.units, pooling, tx, ty),
                                                                          vx, vy),
                                DEFAULT_SPACE, args.trials, seed=0)
        print(f"{pooling}: best validation accuracy {1 - results[0][1]:.4f}")
        if best is None or results[0][1] < best[2]:
            best = (pooling, results[0][0], results[0][1])
    pooling, settings, val_error = best
    whole = ClassifyTask(build_config(None, {"data.task": "classify", "data.path": str(train_file),
                                             "data.val_path": str(test_file)}))
    start = time.perf_counter()
    model = fit(whole, settings, args.units, pooling, whole.train.inputs, whole.train.targets)
    seconds = time.perf_counter() - start
    test = accuracy(model, whole.val.inputs, whole.val.targets)
    shown = ", ".join(f"{k} {v:.3g}" for k, v in settings.items())
    print("| model | validation accuracy | test accuracy | fit time (s) |")
    print("|---|---:|---:|---:|")
    print(f"| ESN {args.units} units, {pooling} pooling ({shown}) | {1 - val_error:.4f} | {test:.4f} | "
          f"{seconds:.2f} |")


if __name__ == "__main__":
    main()

"""n-gram perplexities on Penn Treebank (Mikolov's preprocessing, ../shared/data/ptb): every smoothing at
orders 3 and 5 on the validation set; the test set once, for the classic configuration (interpolated modified
Kneser-Ney, order 5; Mikolov et al. report 141.2).

Usage: ``python benchmarks/bench_ngram_ptb.py [--data ../shared/data/ptb]``
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rnnkit.baselines.ngram import NGramModel
from rnnkit.data import read_text


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "ptb"))
    args = p.parse_args()
    data = Path(args.data)

    def sentences(name):
        return [line.split() for line in read_text(data / f"ptb.{name}.txt").splitlines() if line.strip()]

    train, valid, test = sentences("train"), sentences("valid"), sentences("test")
    print("| model | validation perplexity | fit + evaluate (s) |")
    print("|---|---:|---:|")
    for order in (3, 5):
        for smoothing in ("add-k", "kn", "mkn"):
            start = time.perf_counter()
            model = NGramModel(order, smoothing).fit(train)
            ppl = model.perplexity(valid)
            print(f"| {order}-gram {smoothing} | {ppl:.1f} | {time.perf_counter() - start:.0f} |", flush=True)
    final = NGramModel(5, "mkn").fit(train)
    ppl = final.perplexity(test)
    print(f"\nTest perplexity, 5-gram modified Kneser-Ney: {ppl:.1f} (Mikolov et al.: 141.2; "
          f"{100 * (ppl / 141.2 - 1):+.1f}%)")


if __name__ == "__main__":
    main()

"""rnnkit's word2vec against gensim's on the same corpus and settings: training time and agreement of nearest
neighbours (the mean overlap of the top-10 neighbour lists of the 300 most frequent words). Two gensim runs with
different seeds give the overlap to expect from randomness alone.

Usage: ``python benchmarks/bench_word2vec.py [--data ../shared/data/ptb/ptb.train.txt] [--epochs 5] [--seeds 1]``

With ``--seeds N`` (N > 1), N rnnkit runs and N further gensim runs, each with its own seed, are compared with the
first gensim run: the spread of overlaps that randomness alone gives on each side.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from gensim.models import Word2Vec

from rnnkit.data import read_text
from rnnkit.word2vec import train_word2vec


def overlap(a, b, words, k=10) -> float:
    return sum(len(set(a(w, k)) & set(b(w, k))) for w in words) / (k * len(words))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "ptb" /
                                         "ptb.train.txt"))
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--mode", default="skipgram", choices=["skipgram", "cbow"])
    p.add_argument("--backend", default="auto", choices=["auto", "compiled", "torch"])
    p.add_argument("--seeds", type=int, default=1, help="> 1: overlap spread over this many seeds per side")
    args = p.parse_args()
    sentences = [line.split() for line in read_text(args.data).splitlines() if line.strip()]
    settings = dict(dim=100, window=5, negative=5, min_count=5, sample=1e-3, epochs=args.epochs)

    train_word2vec(sentences[:200], mode=args.mode, backend=args.backend, **{**settings, "epochs": 1, "min_count": 1})
    start = time.perf_counter()  # after a warm-up run (numba compiles on the first call)
    ours = train_word2vec(sentences, mode=args.mode, backend=args.backend, **settings)
    t_ours = time.perf_counter() - start

    def gensim_run(seed):
        begin = time.perf_counter()
        model = Word2Vec(sentences, vector_size=100, window=5, negative=5, min_count=5, sample=1e-3,
                         epochs=args.epochs, sg=int(args.mode == "skipgram"), workers=2, seed=seed)
        return model, time.perf_counter() - begin

    g1, t_g = gensim_run(1)
    g2, _ = gensim_run(2)
    frequent = [w for w in g1.wv.index_to_key if w in ours.vocab.index][:300]

    def ours_nn(w, k):
        return [x for x, _ in ours.most_similar(w, k)]

    def gensim_nn(model):
        return lambda w, k: [x for x, _ in model.wv.most_similar(w, topn=k)]

    header = f"{args.mode}, {args.epochs} epochs, {len(sentences):,} sentences"
    print(f"| {header} | time (s) | words/s | top-10 overlap with gensim |")
    print("|---|---:|---:|---:|")
    from rnnkit.baselines import _compiled

    backend = args.backend if args.backend != "auto" else ("compiled" if _compiled.AVAILABLE else "torch")
    words = sum(len(s) for s in sentences) * args.epochs
    print(f"| rnnkit ({backend}, 2 threads) | {t_ours:.1f} | {words / t_ours:,.0f} | "
          f"{overlap(ours_nn, gensim_nn(g1), frequent):.3f} |")
    print(f"| gensim (C, 2 workers) | {t_g:.1f} | {words / t_g:,.0f} | "
          f"{overlap(gensim_nn(g2), gensim_nn(g1), frequent):.3f} (a second gensim seed) |")
    if args.seeds > 1:
        print(f"\n| top-10 overlap with gensim seed 1, {args.mode} | seeds | each | mean |\n|---|---|---|---:|")
        spreads = {"rnnkit": [], "gensim": []}
        for seed in range(args.seeds):
            run = train_word2vec(sentences, mode=args.mode, backend=args.backend, seed=100 + seed, **settings)
            spreads["rnnkit"].append(overlap(lambda w, k, r=run: [x for x, _ in r.most_similar(w, k)],
                                             gensim_nn(g1), frequent))
            spreads["gensim"].append(overlap(gensim_nn(gensim_run(100 + seed)[0]), gensim_nn(g1), frequent))
        for side, values in spreads.items():
            print(f"| {side} | 100-{99 + args.seeds} | {', '.join(f'{v:.3f}' for v in values)} | "
                  f"{sum(values) / len(values):.3f} |")


if __name__ == "__main__":
    main()

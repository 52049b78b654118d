"""``rnnkit word2vec``: train word vectors on a text, save them, show neighbours and analogies."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("word2vec", help="train skip-gram or CBOW word vectors (negative sampling)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", required=True, help="UTF-8 text, one sentence per line")
    p.add_argument("--out", default="rnnkit-word2vec", help="directory for vectors.safetensors and vocab.json")
    p.add_argument("--mode", default="skipgram", choices=["skipgram", "cbow"])
    p.add_argument("--dim", type=int, default=100)
    p.add_argument("--window", type=int, default=5)
    p.add_argument("--negative", type=int, default=5)
    p.add_argument("--min-count", type=int, default=5)
    p.add_argument("--sample", type=float, default=1e-3, help="subsampling threshold t (0: off)")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--lr", type=float, default=0.025, help="initial SGD rate, decaying linearly (word2vec.c)")
    p.add_argument("--tokenizer", default="whitespace", choices=["whitespace", "words"])
    p.add_argument("--lower", action="store_true")
    p.add_argument("--neighbours", default="", help="comma-separated words whose nearest neighbours to print")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..data import read_text
    from ..data.tokenizers import whitespace_tokenize, word_tokenize
    from ..word2vec import train_word2vec

    if min(args.dim, args.window, args.negative, args.min_count, args.epochs) < 1 or args.lr <= 0:
        raise ValueError("--dim, --window, --negative, --min-count and --epochs must be >= 1 and --lr > 0")
    split = whitespace_tokenize if args.tokenizer == "whitespace" else word_tokenize
    sentences = [s for s in (split(line, args.lower) for line in read_text(args.data).splitlines()) if s]
    vectors = train_word2vec(sentences, dim=args.dim, window=args.window, negative=args.negative,
                             min_count=args.min_count, sample=args.sample, epochs=args.epochs, mode=args.mode,
                             lr=args.lr, seed=args.seed)
    vectors.save(args.out)
    print(f"{len(vectors.vocab):,} words x {args.dim} dimensions written to {args.out}/vectors.safetensors")
    for word in [w.strip() for w in args.neighbours.split(",") if w.strip()]:
        if word in vectors.vocab.index:
            shown = ", ".join(f"{w} {s:.2f}" for w, s in vectors.most_similar(word, 8))
            print(f"{word}: {shown}")
        else:
            print(f"{word}: not in the vocabulary")
    return 0

"""``rnnkit ngram``: fit an n-gram language model on a text and report held-out perplexity."""

from __future__ import annotations

import argparse
import time


def register(sub) -> None:
    p = sub.add_parser("ngram", help="n-gram language model baseline (MLE, add-k, Kneser-Ney) and its perplexity",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--train", required=True, help="UTF-8 training text, one sentence per line")
    p.add_argument("--eval", required=True, help="UTF-8 held-out text, one sentence per line")
    p.add_argument("--order", type=int, default=5)
    p.add_argument("--smoothing", default="mkn", choices=["mle", "add-k", "kn", "mkn"],
                   help="mkn: interpolated modified Kneser-Ney (Chen & Goodman)")
    p.add_argument("--k", type=float, default=1.0, help="add-k constant (1: Laplace)")
    p.add_argument("--tokenizer", default="whitespace", choices=["whitespace", "words"],
                   help="whitespace for pre-tokenized text (PTB); words splits punctuation off")
    p.add_argument("--lower", action="store_true", help="lower-case the text")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..baselines.ngram import NGramModel
    from ..data import read_text
    from ..data.tokenizers import whitespace_tokenize, word_tokenize

    split = whitespace_tokenize if args.tokenizer == "whitespace" else word_tokenize

    def sentences(path):
        return [s for s in (split(line, args.lower) for line in read_text(path).splitlines()) if s]

    start = time.perf_counter()
    model = NGramModel(args.order, args.smoothing, k=args.k).fit(sentences(args.train))
    held_out = sentences(args.eval)
    ppl = model.perplexity(held_out)
    print(f"{args.order}-gram {args.smoothing}: perplexity {ppl:.2f} on {sum(len(s) + 1 for s in held_out):,} "
          f"tokens (vocabulary {len(model.vocab):,}; {time.perf_counter() - start:.0f} s)")
    return 0

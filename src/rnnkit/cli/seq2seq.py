"""``rnnkit translate`` (decode with a trained seq2seq run), ``rnnkit caption`` (caption images with a trained
caption run) and ``rnnkit synth`` (write a generated task's pairs, or the digit-strip images)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub) -> None:
    t = sub.add_parser("translate", help="decode source texts with a trained seq2seq run",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                       description="Print the output for each source text (arguments, or one per line of --file), "
                                   "greedy or by beam search; --attention-png draws where the decoder looked.")
    t.add_argument("run_dir", metavar="RUN")
    t.add_argument("text", nargs="*", help="source texts (quote each one)")
    t.add_argument("--file", help="a UTF-8 file of source texts, one a line ('-': standard input)")
    t.add_argument("--beam", type=int, default=1, help="beam width (1: greedy decoding)")
    t.add_argument("--length-penalty", type=float, default=1.0,
                   help="beam search ranks hypotheses by log P / steps^this (0: raw probability)")
    t.add_argument("--max-length", type=int, default=0, help="output steps at most (0: twice the longest training "
                   "target, plus 10)")
    t.add_argument("--attention-png", metavar="PNG", help="draw the attention heat map here (several sources: "
                   "PNG-1.png, PNG-2.png, ...)")
    t.add_argument("--json", action="store_true", help="print JSON lines: source, output, log_prob, attention")
    t.add_argument("--train.device", dest="train.device", default=None, help="auto, cpu or cuda")
    t.set_defaults(run=run_translate)

    c = sub.add_parser("caption", help="caption images with a trained caption run",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    c.add_argument("run_dir", metavar="RUN")
    c.add_argument("images", nargs="+", metavar="IMAGE", help="picture files of the run's size")
    c.add_argument("--beam", type=int, default=1, help="beam width (1: greedy decoding)")
    c.add_argument("--length-penalty", type=float, default=1.0, help="beam search: log P / steps^this")
    c.add_argument("--attention-png", metavar="PNG", help="draw where the attention looked at each word (several "
                   "images: PNG-1.png, ...)")
    c.add_argument("--train.device", dest="train.device", default=None, help="auto, cpu or cuda")
    c.set_defaults(run=run_caption)

    s = sub.add_parser("synth", help="write a generated task: seq2seq pairs (source<TAB>target lines) or the "
                       "digit-strip captioning images", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    from ..data.synthetic import SYNTHETIC

    s.add_argument("name", choices=[*sorted(SYNTHETIC), "digit-strips"],
                   help="; ".join(f"{t.name}: {t.example}" for t in SYNTHETIC.values()) +
                   "; digit-strips: 3-5 of scikit-learn's 8×8 digits → 'three one four' (a folder of PNGs and "
                   "captions.txt)")
    s.add_argument("--num", type=int, default=0, help="pairs to draw (0: the task's default size)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--part", choices=["train", "test"], default="train",
                   help="digit-strips: the half of the digit images to draw from")
    s.add_argument("--exclude", help="a file of the same task whose sources (digit-strips: captions) must not "
                   "appear (a disjoint test set)")
    s.add_argument("--out", help="write here (atomically) instead of standard output (digit-strips: a folder)")
    s.set_defaults(run=run_synth)


def _sources(args) -> list[str]:
    texts = list(args.text)
    if args.file:
        from ..data.text import read_text

        lines = sys.stdin.read() if args.file == "-" else read_text(args.file)
        texts += [line for line in lines.splitlines() if line.strip()]
    if not texts:
        raise ValueError("give source texts as arguments or with --file")
    return texts


def run_translate(args: argparse.Namespace) -> int:
    from .train import _load_run, _overrides

    if args.beam < 1 or args.max_length < 0:
        raise ValueError("--beam must be >= 1 and --max-length >= 0")
    sources = _sources(args)
    task, model = _load_run(Path(args.run_dir), _overrides(args), with_data=False)
    if task.name != "seq2seq":
        raise ValueError(f"{args.run_dir} is a {task.name} run; translate decodes seq2seq runs")
    rows = task.translate(model, sources, beam=args.beam, length_penalty=args.length_penalty,
                          max_length=args.max_length)
    for i, row in enumerate(rows, 1):
        if args.attention_png and "attention" in row:
            from ..plots import plot_attention

            png = Path(args.attention_png)
            if len(rows) > 1:
                png = png.with_name(f"{png.stem}-{i}{png.suffix or '.png'}")
            plot_attention(row["attention"].numpy(), row["source_tokens"], row["output_tokens"], png,
                           title=f"{row['source']} → {row['output']}"[:80])
            print(f"wrote {png}", file=sys.stderr)
        if args.json:
            shown = {k: v for k, v in row.items() if k != "attention"}
            if "attention" in row:
                shown["attention"] = [[round(float(a), 4) for a in r] for r in row["attention"]]
            print(json.dumps(shown))
        else:
            print(row["output"])
    if args.attention_png and "attention" not in rows[0]:
        print(f"{args.run_dir} has no attention (model.attention = none): no heat map drawn", file=sys.stderr)
    return 0


def run_caption(args: argparse.Namespace) -> int:
    from .train import _load_run, _overrides

    if args.beam < 1:
        raise ValueError("--beam must be >= 1")
    task, model = _load_run(Path(args.run_dir), _overrides(args), with_data=False)
    if task.name != "caption":
        raise ValueError(f"{args.run_dir} is a {task.name} run; caption works on caption runs")
    rows = task.caption(model, task.load_images(args.images), beam=args.beam, length_penalty=args.length_penalty)
    for i, (path, row) in enumerate(zip(args.images, rows), 1):
        print(f"{path}\t{row['output']}")
        if args.attention_png and "attention" in row:
            from ..plots import plot_image_attention

            png = Path(args.attention_png)
            if len(rows) > 1:
                png = png.with_name(f"{png.stem}-{i}{png.suffix or '.png'}")
            image = task.load_images([path])[0]
            plot_image_attention(image, row["attention"].numpy(), row["grid"], row["output_tokens"], png)
            print(f"wrote {png}", file=sys.stderr)
    if args.attention_png and "attention" not in rows[0]:
        print(f"{args.run_dir} has no attention (model.attention = none): no heat map drawn", file=sys.stderr)
    return 0


def run_synth(args: argparse.Namespace) -> int:
    from ..data.examples import read_parallel
    from ..data.synthetic import synthetic_pairs
    from ..io import write_bytes_atomic

    if args.name == "digit-strips":
        from ..data.images import digit_strips, read_captions, write_caption_folder

        if not args.out:
            raise ValueError("digit-strips writes a folder of PNGs and captions.txt: give --out FOLDER")
        exclude = [c for _, c in read_captions(args.exclude)] if args.exclude else []
        pairs = digit_strips(args.num or 10_000, args.seed, args.part, exclude)
        captions = write_caption_folder(pairs, args.out)
        print(f"wrote {len(pairs)} digit strips and {captions}")
        return 0
    exclude = [s for s, _ in read_parallel(args.exclude)] if args.exclude else []
    pairs = synthetic_pairs(args.name, args.num, args.seed, exclude)
    text = "".join(f"{s}\t{t}\n" for s, t in pairs)
    if args.out:
        write_bytes_atomic(args.out, text.encode())
        print(f"wrote {len(pairs)} {args.name} pairs to {args.out}")
    else:
        sys.stdout.write(text)
    return 0

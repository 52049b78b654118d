"""Encoder-decoder benchmarks: SCAN (Lake & Baroni 2018), integer addition, date normalisation, and speed.

Every accuracy run trains rnnkit's ``seq2seq`` task through the Trainer (the settings a user would pass to
``rnnkit train``), keeps the weights with the best validation loss (a random tenth of the training file) and
scores the held-out test file once: exact-sequence match of greedy decoding (and of beam search, width 5), corpus
BLEU (sacrebleu).

* ``scan --split simple|length [--attention none|additive|...]``: ``../shared/data/scan``.
* ``addition``: 50,000 generated ``a+b`` pairs (operands of 1-3 digits, the Keras ``addition_rnn`` example) for
  training; 5,000 other pairs (no source seen in training) for test. Reports the minutes to 99% validation exact
  match as well.
* ``dates``: 20,000 generated dates in 13 surface forms → ISO; 2,000 other dates for test; attention heat maps.
* ``caption``: digit strips (``rnnkit.data.images.digit_strips``): 10,000 for training; two test sets of 1,000
  strips whose digit sequences never occur in training, of the training half's digit images or of the other half's.
* ``speed``: training target tokens/s of rnnkit's Seq2Seq against a plain PyTorch encoder-decoder with the same
  sizes and Bahdanau attention written the usual way (nn.LSTM encoder, nn.LSTMCell decoder loop, additive scores
  recomputed per step), timed alternately in one process; and decoding sentences/s at beam 1 and 5.

Usage: ``python benchmarks/bench_seq2seq.py scan --split simple --minutes 12``
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
from bench_cells import _maybe_reexec, time_alternately, train_best
from torch import nn
from torch.nn import functional as F

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "scan"
DOCS = Path(__file__).resolve().parents[1] / "docs"

BASE = {"data.task": "seq2seq", "data.batch_size": "64", "model.hidden_size": "200", "model.embedding_size": "64",
        "model.num_layers": "1", "model.dropout": "0.1", "train.lr": "1e-3", "train.clip_norm": "5",
        "train.eval_every": "500", "train.checkpoint_every": "100000", "train.log_every": "100",
        "train.schedule": "cosine", "train.steps": "100000"}


def train(overrides: dict, minutes: float, run_dir: Path):
    """Train one setting for ``minutes`` (cosine schedule over the budget); the task and its best weights."""
    return train_best({**BASE, "train.time_limit": str(minutes), **overrides}, run_dir)


def score(task, model, path: str, beam: int = 1) -> dict:
    """Exact match and BLEU of decoding every pair of ``path`` once (the run's tokenizer)."""
    from rnnkit.tasks.seq2seq import corpus_bleu

    rows = task.predict(model, task.file_batches(path), beam=beam)
    split = task.tokenize
    return {"exact_match": sum(r["correct"] for r in rows) / len(rows),
            "bleu": corpus_bleu([split(r["output"]) for r in rows], [split(r["true"]) for r in rows]),
            "n": len(rows)}


def first_reaching(run_dir: Path, key: str, level: float, seconds: float):
    """(update, minutes) of the first evaluation whose ``key`` reached ``level``, minutes pro rata of the run."""
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    last = max(r["step"] for r in records)
    for r in records:
        if r["split"] == "val" and r.get(key, 0) >= level:
            return r["step"], seconds / 60 * r["step"] / last
    return None, None


def report(name: str, overrides: dict, summary: dict, seconds: float, test: dict, beam: dict | None = None) -> None:
    shown = {k: v for k, v in overrides.items() if k not in BASE or BASE[k] != v}
    print(f"\n{name}: {json.dumps(shown)}")
    print(f"  {summary['steps']} updates in {seconds / 60:.1f} min; best validation loss "
          f"{summary['best_val_loss']:.4f}, exact {summary.get('best_val_exact_match', 0):.4f}")
    print(f"  test greedy: exact match {100 * test['exact_match']:.2f}%  BLEU {test['bleu']:.2f}  (n={test['n']})")
    if beam:
        print(f"  test beam 5: exact match {100 * beam['exact_match']:.2f}%  BLEU {beam['bleu']:.2f}")


def run_scan(args) -> None:
    train_file, test_file = DATA / f"tasks_train_{args.split}.txt", DATA / f"tasks_test_{args.split}.txt"
    overrides = {"data.path": str(train_file), "data.tokenizer": "whitespace", "model.attention": args.attention,
                 "train.teacher_forcing": str(args.teacher_forcing), **dict(kv.split("=", 1) for kv in args.set)}
    with tempfile.TemporaryDirectory() as tmp:
        task, model, summary, seconds = train(overrides, args.minutes, Path(tmp) / "run")
        report(f"SCAN {args.split}, attention {args.attention}", overrides, summary, seconds,
               score(task, model, str(test_file)), score(task, model, str(test_file), beam=5))


def _generated(name: str, n_train: int, n_test: int, tmp: Path) -> tuple[Path, Path]:
    from rnnkit.data.synthetic import synthetic_pairs

    train_pairs = synthetic_pairs(name, n_train, seed=0)
    test_pairs = synthetic_pairs(name, n_test, seed=1, exclude=[s for s, _ in train_pairs])
    paths = tmp / f"{name}-train.tsv", tmp / f"{name}-test.tsv"
    for path, pairs in zip(paths, (train_pairs, test_pairs)):
        path.write_text("".join(f"{s}\t{t}\n" for s, t in pairs))
    return paths


def run_generated(args, name: str, n_train: int, n_test: int, level: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        train_file, test_file = _generated(name, n_train, n_test, Path(tmp))
        overrides = {"data.path": str(train_file), "data.tokenizer": "chars", "model.attention": args.attention,
                     **dict(kv.split("=", 1) for kv in args.set)}
        run_dir = Path(tmp) / "run"
        task, model, summary, seconds = train(overrides, args.minutes, run_dir)
        report(f"{name}, attention {args.attention}", overrides, summary, seconds, score(task, model, str(test_file)),
               score(task, model, str(test_file), beam=5))
        step, minutes = first_reaching(run_dir, "exact_match", level, seconds)
        print(f"  first validation exact match >= {100 * level:g}%: " +
              (f"update {step}, {minutes:.1f} min" if step else "not reached"))
        if name == "dates" and args.attention != "none":
            from rnnkit.plots import plot_attention

            texts = ["Tuesday, March 3, 2021", "3 of february 1987", "12/31/1999"]
            for i, row in enumerate(task.translate(model, texts), 1):
                plot_attention(row["attention"].numpy(), row["source_tokens"], row["output_tokens"],
                               DOCS / f"seq2seq_dates_attention_{i}.png", title=f"{row['source']} → {row['output']}")
                print(f"  {row['source']!r} → {row['output']!r}: docs/seq2seq_dates_attention_{i}.png")


def run_caption(args) -> None:
    """Digit strips: 10,000 training strips drawn from one half of the digit images; two test sets of 1,000 strips
    whose digit sequences never occur in training: one of the training half's digit images (the combinations are
    new), one of the other half's (the handwriting is new too)."""
    from rnnkit.data.images import digit_strips, write_caption_folder

    with tempfile.TemporaryDirectory() as tmp:
        train_pairs = digit_strips(10_000, seed=0, part="train")
        seen = [c for _, c in train_pairs]
        tests = {"unseen combinations": digit_strips(1_000, seed=1, part="train", exclude=seen),
                 "unseen combinations and digit images": digit_strips(1_000, seed=0, part="test", exclude=seen)}
        train_captions = write_caption_folder(train_pairs, Path(tmp) / "train")
        overrides = {"data.task": "caption", "data.path": str(train_captions), "model.attention": args.attention,
                     **dict(kv.split("=", 1) for kv in args.set)}
        task, model, summary, seconds = train(overrides, args.minutes, Path(tmp) / "run")
        for i, (name, pairs) in enumerate(tests.items()):
            test_captions = write_caption_folder(pairs, Path(tmp) / f"test{i}")
            report(f"digit-strip captions, attention {args.attention}, test: {name}", overrides, summary, seconds,
                   score(task, model, str(test_captions)), score(task, model, str(test_captions), beam=5))
        if args.attention != "none":
            from rnnkit.plots import plot_image_attention

            image, caption = tests["unseen combinations and digit images"][0]
            (row,) = task.caption(model, [image])
            plot_image_attention(image, row["attention"].numpy(), row["grid"], row["output_tokens"],
                                 DOCS / "caption_digits_attention.png")
            print(f"  a test strip ({caption!r}) → {row['output']!r}: docs/caption_digits_attention.png")


# ---- speed: rnnkit against a plain PyTorch encoder-decoder ---------------------------------------------------
class PlainSeq2Seq(nn.Module):
    """The usual hand-written model (the PyTorch seq2seq tutorial's shape): a bidirectional nn.LSTM encoder, a
    bridge, an nn.LSTMCell decoder stepped in Python with Bahdanau attention v·tanh(W_q s + W_k h) computed at every
    step, input feeding and the same output layer as rnnkit's decoder."""

    def __init__(self, vs: int, vt: int, emb: int, hidden: int):
        super().__init__()
        self.src_emb, self.tgt_emb = nn.Embedding(vs, emb), nn.Embedding(vt, emb)
        self.encoder = nn.LSTM(emb, hidden, batch_first=True, bidirectional=True)
        self.bridge_h, self.bridge_c = nn.Linear(2 * hidden, hidden), nn.Linear(2 * hidden, hidden)
        self.cell = nn.LSTMCell(emb + hidden, hidden)
        self.wq, self.wk, self.v = nn.Linear(hidden, hidden, bias=False), nn.Linear(2 * hidden, hidden), nn.Linear(
            hidden, 1, bias=False)
        self.combine = nn.Linear(3 * hidden, hidden, bias=False)
        self.head = nn.Linear(hidden, vt)

    def forward(self, src, lengths, tgt_in, targets):
        enc, (h, c) = self.encoder(self.src_emb(src))
        mask = torch.arange(src.shape[1])[None] < lengths[:, None]
        h = torch.tanh(self.bridge_h(torch.cat([h[0], h[1]], -1)))
        c = self.bridge_c(torch.cat([c[0], c[1]], -1))
        feed = enc.new_zeros(src.shape[0], h.shape[1])
        logits = []
        for t in range(tgt_in.shape[1]):
            h, c = self.cell(torch.cat([self.tgt_emb(tgt_in[:, t]), feed], -1), (h, c))
            scores = self.v(torch.tanh(self.wq(h).unsqueeze(1) + self.wk(enc))).squeeze(-1)
            alpha = scores.masked_fill(~mask, float("-inf")).softmax(-1)
            ctx = torch.bmm(alpha.unsqueeze(1), enc).squeeze(1)
            feed = torch.tanh(self.combine(torch.cat([h, ctx], -1)))
            logits.append(self.head(feed))
        logits = torch.stack(logits, 1)
        return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)


def run_speed(args) -> None:
    from rnnkit.generation.seq2seq import beam_decode, greedy_decode
    from rnnkit.models.seq2seq import Seq2Seq

    torch.manual_seed(0)
    B, S, T, V, E, H = 64, 12, 16, 40, 64, args.hidden
    ours = Seq2Seq(V, V, embedding_size=E, hidden_size=H, attention="additive", bidirectional=True)
    plain = PlainSeq2Seq(V, V, E, H)
    batches = []
    for _ in range(8):
        lengths = torch.randint(4, S + 1, (B,))
        src = torch.randint(3, V, (B, S)) * (torch.arange(S)[None] < lengths[:, None])
        tgt = torch.randint(3, V, (B, T))
        batches.append((src, lengths, tgt))
    opt_ours, opt_plain = torch.optim.Adam(ours.parameters()), torch.optim.Adam(plain.parameters())

    def step_ours(i):
        src, lengths, tgt = batches[i % len(batches)]
        opt_ours.zero_grad()
        ours(src, tgt, lengths=lengths).loss.backward()
        opt_ours.step()

    def step_plain(i):
        src, lengths, tgt = batches[i % len(batches)]
        opt_plain.zero_grad()
        tgt_in = torch.cat([torch.ones(B, 1, dtype=torch.long), tgt[:, :-1]], 1)
        plain(src, lengths, tgt_in, tgt).backward()
        opt_plain.step()

    r_ours, r_plain, ratio = time_alternately(step_ours, step_plain, steps=10, rounds=5, units_per_step=B * T)
    print(f"training, batch {B}, source {S}, target {T}, hidden {H}, additive attention, input feeding:")
    print(f"  rnnkit Seq2Seq {r_ours:,.0f} target tokens/s   plain PyTorch {r_plain:,.0f}   ratio {ratio:.2f}x")

    no_feed = Seq2Seq(V, V, embedding_size=E, hidden_size=H, attention="additive", bidirectional=True,
                      input_feeding=False)
    opt_no_feed = torch.optim.Adam(no_feed.parameters())

    def step_no_feed(i):
        src, lengths, tgt = batches[i % len(batches)]
        opt_no_feed.zero_grad()
        no_feed(src, tgt, lengths=lengths).loss.backward()
        opt_no_feed.step()

    r_nf, r_plain2, ratio_nf = time_alternately(step_no_feed, step_plain, steps=10, rounds=5, units_per_step=B * T)
    print(f"  rnnkit without input feeding (decoder in one fused call) {r_nf:,.0f} target tokens/s   plain PyTorch "
          f"(with feeding) {r_plain2:,.0f}   ratio {ratio_nf:.2f}x")
    ours.eval()
    src, lengths, _ = batches[0]
    for beam in (1, 5):
        decode = (lambda: greedy_decode(ours, src, lengths, max_length=T)) if beam == 1 else (
            lambda: beam_decode(ours, src, lengths, beam_width=beam, max_length=T))
        decode()
        start = time.perf_counter()
        for _ in range(5):
            decode()
        per = (time.perf_counter() - start) / 5
        print(f"  decoding, beam {beam}: {B / per:,.0f} sentences/s ({T} steps each, batch {B})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["scan", "addition", "dates", "caption", "speed"])
    p.add_argument("--split", choices=["simple", "length"], default="simple")
    p.add_argument("--attention", default="additive", choices=["none", "additive", "dot", "general"])
    p.add_argument("--teacher-forcing", type=float, default=1.0)
    p.add_argument("--minutes", type=float, default=10.0, help="training budget per run")
    p.add_argument("--hidden", type=int, default=200, help="speed: hidden size")
    p.add_argument("--set", nargs="*", default=[], help="extra config overrides, key=value")
    p.add_argument("--no-malloc-tuning", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    if args.what == "scan":
        run_scan(args)
    elif args.what == "addition":
        run_generated(args, "addition", 50_000, 5_000, 0.99)
    elif args.what == "dates":
        run_generated(args, "dates", 20_000, 2_000, 0.999)
    elif args.what == "caption":
        run_caption(args)
    else:
        run_speed(args)


if __name__ == "__main__":
    _maybe_reexec(sys.argv)
    main()

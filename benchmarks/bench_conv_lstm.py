"""Next-frame prediction on moving digits (Srivastava et al. 2015's Moving MNIST, made from scikit-learn's bundled 8×8
digits: ``rnnkit.data.images.moving_digits``): a ConvLSTM against a fully connected LSTM (the FC-LSTM of Shi et al.
2015) on the same data and updates.

Each update draws a fresh batch of sequences from the training half of the digits (the data never repeat); each
model learns the next frame from the frames so far (teacher forcing, per-pixel cross-entropy). Validation and test
sequences come from the other half of the digits, with their own seeds. The score is Shi et al.'s: read the first
``--context`` frames, then predict the rest, each prediction fed back as the next input (free running), and sum the
per-pixel cross-entropy over the predicted frames (nats per sequence). Each model's best validation weights are
scored once on the test sequences; ``frames.png`` shows a test sequence and both models' predictions.

Usage: ``python benchmarks/bench_conv_lstm.py [--updates 1000] [--size 24] [--out DIR]``
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path

import torch
from bench_cells import _maybe_reexec
from torch import nn
from torch.nn import functional as F


class ConvPredictor(nn.Module):
    """ConvLSTM stack → 1×1 convolution: the logits of the next frame at every step."""

    def __init__(self, channels: tuple[int, ...], kernel: int):
        super().__init__()
        from rnnkit.layers import ConvLSTM

        self.rnn = ConvLSTM(1, channels, kernel_size=kernel)
        self.head = nn.Conv2d(channels[-1], 1, 1)

    def forward(self, frames, state=None):
        out, state = self.rnn(frames, state)
        return self.head(out.flatten(0, 1)).view(*out.shape[:2], 1, *out.shape[-2:]), state


class FCPredictor(nn.Module):
    """The frames flattened → an LSTM stack (rnnkit.RNN) → a linear layer back to the frame's pixels."""

    def __init__(self, size: int, hidden: int, layers: int):
        super().__init__()
        from rnnkit import RNN

        self.size = size
        self.rnn = RNN(size * size, hidden, layers, cell="lstm")
        self.head = nn.Linear(hidden, size * size)

    def forward(self, frames, state=None):
        out, state = self.rnn(frames.flatten(2), state)
        return self.head(out).view(*out.shape[:2], 1, self.size, self.size), state


def free_running_loss(model, frames, context: int) -> tuple[float, torch.Tensor]:
    """Read ``context`` frames, predict the rest feeding each prediction back; the cross-entropy summed over the
    predicted frames' pixels, averaged over sequences (nats), and the predicted frames."""
    with torch.no_grad():
        logits, state = model(frames[:, :context])
        step, predictions = torch.sigmoid(logits[:, -1:]), []
        for _ in range(frames.shape[1] - context):
            predictions.append(step)
            logits, state = model(step, state)
            step = torch.sigmoid(logits)
        predicted = torch.cat(predictions, 1)
        loss = F.binary_cross_entropy(predicted.clamp(1e-7, 1 - 1e-7), frames[:, context:], reduction="sum")
    return loss.item() / len(frames), predicted


def train(name, model, args, val, test) -> dict:
    from rnnkit.data.images import moving_digits

    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    best, best_state, curve, started = float("inf"), None, [], time.perf_counter()
    for update in range(1, args.updates + 1):
        frames = torch.from_numpy(moving_digits(args.batch, args.frames, args.size, seed=update))
        logits, _ = model(frames[:, :-1])
        loss = F.binary_cross_entropy_with_logits(logits, frames[:, 1:])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if update % args.eval_every == 0 or update == args.updates:
            model.eval()
            score, _ = free_running_loss(model, val, args.context)
            model.train()
            curve.append((update, score))
            if score < best:
                best, best_state = score, copy.deepcopy(model.state_dict())
            print(f"{name}: update {update}, validation {score:.1f} nats per sequence", flush=True)
    minutes = (time.perf_counter() - started) / 60
    model.load_state_dict(best_state)
    model.eval()
    test_score, predicted = free_running_loss(model, test, args.context)
    return {"name": name, "parameters": sum(p.numel() for p in model.parameters()), "best_val": best,
            "test": test_score, "minutes": minutes, "curve": curve, "predicted": predicted}


def picture(results, test, context: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [("truth", test[0, context:])] + [(r["name"].split()[0], r["predicted"][0]) for r in results]
    steps = test.shape[1] - context
    fig, axes = plt.subplots(len(rows), steps, figsize=(steps * 0.9, len(rows) * 1.0))
    for i, (label, frames) in enumerate(rows):
        for t in range(steps):
            ax = axes[i, t]
            ax.imshow(frames[t, 0].numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if t == 0:
                ax.set_ylabel(label, fontsize=7)
    fig.suptitle(f"test sequence 0: frames {context + 1}-{test.shape[1]} after {context} read", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    from rnnkit.data.images import moving_digits
    from rnnkit.precision import cpu_model

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--updates", type=int, default=1000)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--frames", type=int, default=20)
    p.add_argument("--context", type=int, default=10)
    p.add_argument("--size", type=int, default=24)
    p.add_argument("--channels", type=int, nargs="+", default=[16, 16])
    p.add_argument("--kernel", type=int, default=3)
    p.add_argument("--fc-hidden", type=int, default=512)
    p.add_argument("--fc-layers", type=int, default=2)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--sequences", type=int, default=256, help="validation and test sequences each")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--no-malloc-tuning", action="store_true")
    args = p.parse_args()
    out = args.out or Path(tempfile.mkdtemp()) / "conv_lstm"
    out.mkdir(parents=True, exist_ok=True)
    val = torch.from_numpy(moving_digits(args.sequences, args.frames, args.size, seed=10**6, part="test"))
    test = torch.from_numpy(moving_digits(args.sequences, args.frames, args.size, seed=2 * 10**6, part="test"))
    models = [(f"ConvLSTM {'x'.join(map(str, args.channels))} channels, {args.kernel}x{args.kernel}",
               ConvPredictor(tuple(args.channels), args.kernel)),
              (f"FC-LSTM {args.fc_layers}x{args.fc_hidden}", FCPredictor(args.size, args.fc_hidden, args.fc_layers))]
    results = [train(name, model, args, val, test) for name, model in models]
    print(f"\n{cpu_model()}; moving digits {args.size}x{args.size}, 2 digits, {args.frames} frames ({args.context} "
          f"read, {args.frames - args.context} predicted); {args.updates} updates of {args.batch} fresh sequences\n")
    print("| model | parameters | best validation (nats per sequence) | test, once | minutes |")
    print("|---|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['name']} | {r['parameters']:,} | {r['best_val']:.1f} | {r['test']:.1f} | {r['minutes']:.1f} |")
    picture(results, test, args.context, out / "frames.png")
    print(f"\npredictions: {out / 'frames.png'}")


if __name__ == "__main__":
    _maybe_reexec(sys.argv)
    main()

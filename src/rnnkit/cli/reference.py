"""``rnnkit reference char-rnn``: train the from-scratch NumPy char model and watch it learn."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..io import write_json_atomic


def register(sub) -> None:
    p = sub.add_parser("reference", help="from-scratch NumPy models (hand-written BPTT)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("task", choices=["char-rnn"], help="char-rnn: train a NumPy character model (min-char-rnn)")
    p.add_argument("--data", help="UTF-8 text file (default: the Python docs text that ships with Python)")
    p.add_argument("--model", default="rnn", choices=["rnn", "lstm", "gru"])
    p.add_argument("--hidden-size", type=int, default=100)
    p.add_argument("--seq-length", type=int, default=25, help="characters per truncated-BPTT chunk")
    p.add_argument("--lr", type=float, default=0.1, help="Adagrad learning rate")
    p.add_argument("--iterations", type=int, default=5000)
    p.add_argument("--clip", type=float, default=5.0)
    p.add_argument("--clip-mode", default="value", choices=["value", "norm", "random"],
                   help="element-wise clip, norm rescaling, or a random step above the threshold (seed 003)")
    p.add_argument("--sample-every", type=int, default=1000)
    p.add_argument("--max-chars", type=int, default=300_000, help="use at most this many characters of the text")
    p.add_argument("--out", default="rnnkit-char-rnn", help="directory for the PNG plots")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..data import default_text, read_text
    from ..reference.charrnn import build_char_model, train_char_rnn

    if min(args.hidden_size, args.seq_length, args.iterations) < 1 or args.lr <= 0 or args.clip <= 0:
        raise ValueError("--hidden-size, --seq-length and --iterations must be >= 1; --lr and --clip > 0")
    text = default_text()[: args.max_chars] if args.data is None else read_text(args.data, args.max_chars)
    probe = text[: min(50, len(text))]
    # gradient flow at initialisation: the untrained model (same shape and seed as the one trained below)
    untrained, vocab = build_char_model(text, args.model, args.hidden_size, args.seed)
    before = _diagnose(untrained, vocab.encode(probe))
    result = train_char_rnn(text, model=args.model, hidden_size=args.hidden_size, seq_length=args.seq_length,
                            learning_rate=args.lr, iterations=args.iterations, clip=args.clip,
                            clip_mode=args.clip_mode, sample_every=args.sample_every, seed=args.seed)
    after = _diagnose(result.model, vocab.encode(probe))
    for it, sample in result.samples:
        print(f"---- sample after {it} iterations ----\n{sample}\n")
    first, last = result.losses[0][1], result.losses[-1][1]
    print(f"loss {first:.3f} -> {last:.3f} nats/char over {args.iterations} iterations "
          f"(uniform guess {np.log(len(result.vocab)):.3f}); vocabulary {len(result.vocab)} characters")
    print(f"gradient flow ‖∂L/∂h_t‖ per step back over {len(probe)} characters: x{before['factor']:.3f} at "
          f"initialisation, x{after['factor']:.3f} after training; spectral radius of the recurrent matrix "
          f"{before['spectral_radius']:.2f} -> {after['spectral_radius']:.2f}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = {"losses": result.losses, "before": before, "after": after, "samples": result.samples}
    write_json_atomic(out / "diagnostics.json", data)
    print(f"wrote {out / 'diagnostics.json'}")
    for path in _plots(out, result, before, after):
        print(f"wrote {path}")
    return 0


def _diagnose(model, ids) -> dict:
    """Gradient flow of a NumPy model on a probe text, summarised by ``rnnkit.diagnostics`` (index = distance),
    as plain lists for JSON."""
    from ..diagnostics import flow_summary
    from ..reference import recurrent_matrix, state_gradient_norms

    summary = flow_summary(state_gradient_norms(model, ids)[::-1].copy(), recurrent_matrix(model))
    summary["eigenvalues"] = [[z.real, z.imag] for z in summary["eigenvalues"].tolist()]
    return {k: v.tolist() if hasattr(v, "tolist") else v for k, v in summary.items()}


def _plots(out: Path, result, before, after) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..plots import plot_eigenvalues, plot_gradient_flow, plot_power_norms

    paths = [out / "loss.png", out / "gradient_flow.png", out / "eigenvalues.png", out / "power_norms.png"]
    fig, ax = plt.subplots(figsize=(6, 4))
    its, losses = zip(*result.losses)
    ax.plot(its, losses)
    ax.set(xlabel="iteration", ylabel="training loss (nats/char)", title="NumPy char model")
    fig.tight_layout()
    fig.savefig(paths[0], dpi=120)
    plt.close(fig)
    stages = {"at initialisation": before, "after training": after}
    plot_gradient_flow({k: d["gradient_norms"] for k, d in stages.items()}, paths[1])
    plot_eigenvalues({f"{k} (ρ = {d['spectral_radius']:.2f})": [complex(*z) for z in d["eigenvalues"]]
                      for k, d in stages.items()}, paths[2], title="Eigenvalues of the recurrent matrix")
    plot_power_norms({k: d["power_norms"] for k, d in stages.items()}, paths[3])
    return paths

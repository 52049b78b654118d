"""Polyphonic music (``--data.task music``): RNN baselines with independent Bernoulli outputs per key and the deep
Markov model on the Boulanger-Lewandowski sets (JSB Chorales, Nottingham, Piano-midi.de, MuseData), the deep Markov
model's proof on a linear-Gaussian model, and its speed against Pyro's DMM.

NLL per time step as the papers measure it: the summed negative log-likelihood over the test sequences divided by
their number of time steps. For the RNNs it is exact; for the DMM the negative ELBO (a bound) and the importance-
sampled estimate with ``--iw-samples`` posterior samples per sequence (tighter; Burda et al. 2016).

Modes (``--set jsb|nottingham|piano|muse``, data from ``--data DIR``, default ../shared/data):

* ``select``: every ``--settings`` for ``--minutes`` on the validation part (seed 0): the validation NLL.
* ``test``: each setting for ``--seeds`` seeds, the weights with the best validation loss, then the test NLL (and
  for the DMM the importance-sampled test NLL). Runs are kept under ``--runs`` (curves, ``rnnkit music RUN``).
* ``linear``: data from a linear-Gaussian state-space model; a linear DMM's ELBO and importance-sampled estimate
  against the exact log-likelihood from rnnkit's Kalman filter, and the learned dynamics against the true ones.
* ``speed``: training updates per second of rnnkit's DMM and Pyro's (``pip install pyro-ppl``; the model of Pyro's
  examples/dmm.py, same sizes, a ReLU RNN in both as Pyro's example has, the same batches), side by side.

Usage: ``python benchmarks/bench_music.py --mode test --set jsb --settings dmm --minutes 120 --seeds 1``
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from bench_cells import train_best

FILES = {"jsb": "jsb_chorales/JSB_Chorales.mat", "nottingham": "polyphonic_music_extra/Nottingham.mat",
         "piano": "polyphonic_music_extra/Piano_midi.mat", "muse": "polyphonic_music_extra/MuseData.mat"}
BASE = {"data.task": "music", "train.log_every": "100", "train.checkpoint_every": "1000", "train.steps": "10000000"}
# Pyro's examples/dmm.py sizes: z 100, transition 200, emission 100, a tanh RNN of 600 reading x from the right
DMM = {"model.music_model": "dmm", "model.cell": "rnn", "model.hidden_size": "600", "model.num_layers": "1",
       "model.latent_size": "100", "model.transition_size": "200", "model.emission_size": "100",
       "model.dropout": "0", "model.inference": "st-r", "data.batch_size": "20", "train.lr": "1e-3",
       "train.clip_norm": "10", "train.kl_anneal": "3000", "train.kl_start": "0.2", "train.schedule": "cosine",
       "train.eval_every": "500", "train.patience": "20"}
RNN = {"model.num_layers": "1", "data.batch_size": "16", "train.lr": "2e-3", "train.eval_every": "100",
       "train.schedule": "cosine"}
SETTINGS = {
    "rnn-256-d0.3": {**RNN, "model.cell": "rnn", "model.hidden_size": "256", "model.dropout": "0.3"},
    "gru-256-d0.3": {**RNN, "model.cell": "gru", "model.hidden_size": "256", "model.dropout": "0.3"},
    "lstm-256-d0.3": {**RNN, "model.cell": "lstm", "model.hidden_size": "256", "model.dropout": "0.3"},
    "lstm-256-d0.5": {**RNN, "model.cell": "lstm", "model.hidden_size": "256", "model.dropout": "0.5"},
    "lstm-512-d0.5": {**RNN, "model.cell": "lstm", "model.hidden_size": "512", "model.dropout": "0.5"},
    "lstm-128-d0.3": {**RNN, "model.cell": "lstm", "model.hidden_size": "128", "model.dropout": "0.3"},
    "dmm": DMM,
    "dmm-st-lr": {**DMM, "model.inference": "st-lr"},
    "dmm-iaf1": {**DMM, "model.flows": "1"},
}


def run(args, setting: str, seed: int, test: bool) -> dict:
    from rnnkit.training.trainer import evaluate

    path = str(Path(args.data) / FILES[args.set])
    overrides = {**BASE, **SETTINGS[setting], "data.path": path, "train.seed": str(seed),
                 "train.time_limit": str(args.minutes)}
    run_dir = Path(args.runs) / f"{args.set}-{setting}-seed{seed}"
    if run_dir.exists():
        raise SystemExit(f"{run_dir} exists: remove it or choose another --runs directory")
    task, model, summary, seconds = train_best(overrides, run_dir)
    out = {"set": args.set, "setting": setting, "seed": seed, "val": summary["best_val_loss"],
           "steps": summary["steps"], "seconds": seconds, "parameters": sum(p.numel() for p in model.parameters()),
           "run": str(run_dir)}
    if test:
        batches = task.file_batches(path)  # data.split: test
        out["test"] = evaluate(model, task, batches=batches)["loss"]
        if task.is_dmm:
            torch.manual_seed(seed)
            out["test_iw"] = _importance_nll(model, batches, args.iw_samples)
            out["val_iw"] = _importance_nll(model, task.val, args.iw_samples)
    (run_dir / "bench.json").write_text(json.dumps(out, indent=1))
    return out


def _importance_nll(model, batches, samples: int) -> float:
    total, steps = 0.0, 0
    for batch in batches.sequential():
        total -= float(model.importance_log_likelihood(batch.inputs, batch.lengths, samples).double().sum())
        steps += batch.num_targets
    return total / steps


def linear(args) -> None:
    """The linear-Gaussian proof at full size."""
    from rnnkit.baselines.kalman import LDSParams, kalman_filter, simulate
    from rnnkit.latent import DeepMarkovModel
    from rnnkit.latent.dmm import to_lds_params

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    true = LDSParams(A=np.array([[0.9, 0.2], [0.0, 0.7]]), C=rng.normal(size=(4, 2)), Q=np.diag([0.1, 0.2]),
                     R=np.diag([0.1, 0.2, 0.15, 0.3]), mu0=np.zeros(2), P0=np.eye(2))
    N, T, updates = 200, 100, args.updates
    ys = [simulate(true, T, rng)[1] for _ in range(N)]
    exact = sum(kalman_filter(y, true).loglik for y in ys) / (N * T)
    x = torch.tensor(np.stack(ys), dtype=torch.float32)
    print(f"{N} sequences × {T} steps from a 2-state, 4-output linear-Gaussian model; {updates} Adam updates "
          "(lr 1e-2, cosine), batches of 32\n")
    print("| inference | ELBO / step | importance-sampled (K=500) | exact (Kalman, true parameters) | ELBO gap | "
          "IW gap | learned model, exact | eigenvalues of A (true 0.9, 0.7) | seconds |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---:|")
    for inference in args.inference:
        torch.manual_seed(0)
        model = DeepMarkovModel(4, 2, emission="gaussian-linear", transition="linear", inference=inference,
                                cell="rnn", hidden_size=16, combiner="linear")
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / updates)))
        start = time.perf_counter()
        for _ in range(updates):
            loss = model(x[torch.randint(0, N, (32,))]).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
        seconds = time.perf_counter() - start
        with torch.no_grad():
            elbo = np.mean([float((lambda t: (t["log_px"] - t["kl"]).sum())(model.terms(x))) for _ in range(20)])
        elbo /= N * T
        iw = float(model.importance_log_likelihood(x, samples=500).sum()) / (N * T)
        lds, d = to_lds_params(model)
        learned = sum(kalman_filter(y - d, lds).loglik for y in ys) / (N * T)
        eig = ", ".join(f"{v:.3f}" for v in sorted(np.linalg.eigvals(lds.A).real, reverse=True))
        print(f"| {inference} | {elbo:.4f} | {iw:.4f} | {exact:.4f} | {100 * (exact - elbo) / abs(exact):.2f}% | "
              f"{100 * (exact - iw) / abs(exact):.2f}% | {learned:.4f} | {eig} | {seconds:.0f} |", flush=True)


def speed(args) -> None:
    """Updates per second of rnnkit's DMM and Pyro's on the same JSB batches (sizes of Pyro's example)."""
    from bench_music_pyro import PyroDMM, pyro_step

    from rnnkit.config import build_config
    from rnnkit.tasks import TASKS

    path = str(Path(args.data) / FILES[args.set])
    config = build_config(None, {**BASE, **DMM, "data.path": path, "model.cell_options": 'nonlinearity = "relu"'})
    task = TASKS["music"](config)
    batches = [task.train.chunk(i) for i in range(args.updates + 5)]
    torch.manual_seed(0)
    ours = task.build_model()
    opt = torch.optim.Adam(ours.parameters(), lr=1e-3)

    def ours_step(batch):
        loss = ours(batch.inputs, batch.targets, None, **batch.model_inputs()).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(ours.parameters(), 10.0)
        opt.step()

    pyro_model = PyroDMM()
    step_pyro = pyro_step(pyro_model)
    rows = {}
    for name, step in (("rnnkit", ours_step), ("pyro", step_pyro)):
        for b in batches[:5]:  # warm-up
            step(b)
        start = time.perf_counter()
        for b in batches[5:]:
            step(b)
        rows[name] = args.updates / (time.perf_counter() - start)
    import pyro

    steps = sum(b.num_steps for b in batches[5:])
    print(f"torch {torch.__version__}, pyro {pyro.__version__}, {torch.get_num_threads()} threads; {args.updates} "
          f"updates on JSB batches of 20 ({steps / args.updates:.0f} real steps a batch)\n")
    print("| implementation | updates/s | ratio to Pyro |\n|---|---:|---:|")
    for name, rate in rows.items():
        print(f"| {name} | {rate:.2f} | {rate / rows['pyro']:.2f}x |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mode", choices=["select", "test", "linear", "speed"], default="select")
    p.add_argument("--set", choices=list(FILES), default="jsb")
    p.add_argument("--settings", nargs="+", default=["lstm-256-d0.3"], choices=list(SETTINGS))
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--minutes", type=float, default=10.0, help="training budget of each run")
    p.add_argument("--iw-samples", type=int, default=100)
    p.add_argument("--updates", type=int, default=4000, help="linear: Adam updates; speed: timed updates")
    p.add_argument("--inference", nargs="+", default=["st-r", "st-lr", "st-l", "mean-field"])
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    p.add_argument("--runs", default="/tmp/rnnkit-music")
    args = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if args.mode == "linear":
        return linear(args)
    if args.mode == "speed":
        return speed(args)
    print(f"{args.set}: {args.minutes:g} minutes a run\n")
    if args.mode == "select":
        print("| setting | parameters | validation NLL | updates |\n|---|---:|---:|---:|")
        for name in args.settings:
            r = run(args, name, args.first_seed, test=False)
            print(f"| {name} | {r['parameters']:,} | {r['val']:.3f} | {r['steps']} |", flush=True)
        return
    print("| set | setting | seed | validation | test | test (importance-sampled) | updates |\n"
          "|---|---|---:|---:|---:|---:|---:|")
    for name in args.settings:
        rows = [run(args, name, seed, test=True) for seed in range(args.first_seed, args.first_seed + args.seeds)]
        for r in rows:
            iw = f"{r['test_iw']:.3f}" if "test_iw" in r else "—"
            print(f"| {args.set} | {name} | {r['seed']} | {r['val']:.3f} | {r['test']:.3f} | {iw} | {r['steps']} |",
                  flush=True)
        if len(rows) > 1:
            print(f"| {args.set} | {name} | mean | {statistics.mean(r['val'] for r in rows):.3f} | "
                  f"{statistics.mean(r['test'] for r in rows):.3f} | | |")


if __name__ == "__main__":
    main()

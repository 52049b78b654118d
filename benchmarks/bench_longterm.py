"""The long-term dependency grids of docs/longterm.md, through ``rnnkit.lab.run_grid`` (resumable: rerun the same
command to continue a killed grid; ``--part i/n`` runs every n-th variant so n processes share a machine).

Grids (budgets per run on this 2-core CPU, one thread a process):

* ``adding``: every variant on the modern adding problem, T = 100, 200; 2.5 minutes a run.
* ``copy``: the variants Arjovsky et al. compare (RNN, IRNN, LSTM, uRNN; plus GRU and the orthogonal RNN) on copy
  memory, T = 100, 200, at their settings (RMSProp lr 1e-3, batches of 20, their hidden sizes); 8 minutes a run.
* ``clipping``: the tanh RNN with and without norm clipping (at 1), plain SGD at lr 1 (adding, T = 50); 2 minutes
  a run. (With Adam at lr 1e-2 both train alike: Adam's per-parameter scaling already bounds each step.)
* ``adding-long``, ``adding-long-200``: what 2.5 minutes did not settle, with 10 minutes a run (delay paths, the
  regulariser and the clockwork RNN against the tanh RNN at T = 100; LSTM and leaky units at T = 200).
* ``pixels``: RNN, IRNN, LSTM, GRU, unitary on pixel-by-pixel digits, in order and permuted; 5 minutes a run.

Usage: ``python benchmarks/bench_longterm.py --grid adding --part 1/2 --out /tmp/rnnkit-lab``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from rnnkit.lab import run_grid

GRIDS = {
    "adding": ("adding", ["rnn", "irnn", "lstm", "gru", "mut1", "leaky", "delay", "orthogonal", "unitary",
                          "clockwork", "deep-transition", "rnn-regularized"], [100, 200], 2.5, {}),
    # Arjovsky et al. 2016 §4.1 (sizes as in their scripts): RMSProp lr 1e-3, batches of 20, RNN / IRNN 80 units,
    # LSTM 40, uRNN 128 complex units; GRU 40 and the orthogonal RNN 80 (not in the paper) sized like their kin
    "copy": ("copy", ["rnn", "irnn", "lstm", "gru", "orthogonal", "unitary"], [100, 200], 8.0,
             {"train.optimizer": "rmsprop", "rnn:model.hidden_size": "80", "irnn:model.hidden_size": "80",
              "orthogonal:model.hidden_size": "80", "lstm:model.hidden_size": "40", "gru:model.hidden_size": "40"}),
    "clipping": ("adding", ["rnn", "rnn-noclip"], [50], 2.0, {"train.optimizer": "sgd", "train.lr": "1.0"}),
    # the claims a 2.5-minute run did not settle: delay paths, Pascanu's regulariser and the clockwork RNN against
    # the plain tanh RNN at T = 100, and the LSTM and leaky units at T = 200, with 10 minutes a run
    "adding-long": ("adding", ["rnn", "delay", "rnn-regularized", "clockwork"], [100], 10.0, {}),
    "adding-long-200": ("adding", ["lstm", "leaky"], [200], 10.0, {}),
    "pixels": ("pixels", ["rnn", "irnn", "lstm", "gru", "unitary"], [64], 5.0, {}),
    "pixels-permuted": ("pixels", ["rnn", "irnn", "lstm", "gru", "unitary"], [64], 5.0, {"data.permuted": "true"}),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--grid", choices=list(GRIDS), required=True)
    p.add_argument("--part", default="1/1", help="i/n: every n-th variant starting at the i-th")
    p.add_argument("--minutes", type=float, default=0.0, help="override the grid's budget per run")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--out", default="/tmp/rnnkit-lab")
    args = p.parse_args()
    experiment, variants, lags, minutes, overrides = GRIDS[args.grid]
    i, n = (int(v) for v in args.part.split("/"))
    mine = variants[i - 1::n]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; grid {args.grid}: {mine} × T {lags}, "
          f"{args.minutes or minutes:g} minutes a run")
    overrides = {k: v for k, v in overrides.items() if ":" not in k or k.split(":", 1)[0] in mine}
    run_grid(experiment, mine, lags, args.seeds, Path(args.out) / args.grid, args.minutes or minutes, overrides,
             progress=False)
    print((Path(args.out) / args.grid / experiment / "results.md").read_text())


if __name__ == "__main__":
    main()

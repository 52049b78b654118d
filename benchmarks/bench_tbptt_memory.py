"""Peak memory of training on one long sequence: truncated BPTT (k = 50) at T = 500 and T = 10,000, and full BPTT
over T = 10,000 (one graph), each in a fresh process (peak RSS: VmHWM).

Usage: ``python benchmarks/bench_tbptt_memory.py [--hidden 256]``
"""

from __future__ import annotations

import argparse
import subprocess
import sys

CHILD = """
import sys, tempfile, torch
from rnnkit.config import build_config
from rnnkit.data.streams import StreamBatches
from rnnkit.models import Forecaster
from rnnkit.tasks import Task
from rnnkit.training import Trainer

T, k, hidden = map(int, sys.argv[1:4])

class LongSine(Task):
    description = "sine"
    def __init__(self, cfg):
        self.config = cfg
        x = torch.sin(0.05 * torch.arange(T + 201, dtype=torch.float32)).unsqueeze(-1)
        self.train = StreamBatches(x[:T + 1], 1, k, shuffle_offset=False)
        self.val = StreamBatches(x[T:], 1, 100, shuffle_offset=False)
    def build_model(self):
        return Forecaster(1, hidden, 1)

cfg = build_config(None, {"data.batch_size": "1", "data.seq_length": str(k), "train.steps": str(T // k),
                          "train.eval_every": "1000000", "train.checkpoint_every": "1000000",
                          "train.log_every": "1000000"})
with tempfile.TemporaryDirectory() as d:
    Trainer(cfg, LongSine(cfg), d + "/run", progress=False).fit()
# VmHWM: this process's own peak (ru_maxrss would include the parent's, kept across exec)
print(next(int(line.split()[1]) for line in open('/proc/self/status') if line.startswith('VmHWM')))
"""


def peak_mib(T: int, k: int, hidden: int) -> float:
    out = subprocess.run([sys.executable, "-c", CHILD, str(T), str(k), str(hidden)], capture_output=True, text=True,
                         check=True)
    return int(out.stdout.split()[-1]) / 1024


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hidden", type=int, default=256)
    args = p.parse_args()
    print(f"| training (one LSTM layer, hidden {args.hidden}, batch 1) | peak RSS (MiB) |")
    print("|---|---:|")
    for T, k, label in ((500, 50, "TBPTT k=50, T=500"), (10_000, 50, "TBPTT k=50, T=10,000"),
                        (10_000, 10_000, "full BPTT, T=10,000")):
        print(f"| {label} | {peak_mib(T, k, args.hidden):.0f} |", flush=True)


if __name__ == "__main__":
    main()

"""Crash safety and scale: resume after kill -9 reaches the same weights, DDP with 2 gloo processes matches a
single process, and truncated BPTT keeps memory flat however long the sequence."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from safetensors.torch import load_file

RUN = [sys.executable, "-m", "rnnkit.cli.main", "-q", "train", "--data.task", "forecast", "--model.hidden_size",
       "48", "--model.num_layers", "2", "--model.dropout", "0.1", "--data.seq_length", "40", "--data.batch_size",
       "8", "--train.eval_every", "50", "--train.checkpoint_every", "10", "--train.log_every", "10"]


def weights(run_dir, step):
    return load_file(str(run_dir / "checkpoints" / f"step-{step:08d}" / "model.safetensors"))


def test_resume_after_kill_reaches_the_same_weights(tmp_path):
    steps = "300"
    subprocess.run(RUN + ["--run-dir", str(tmp_path / "whole"), "--train.steps", steps], check=True)

    victim = subprocess.Popen(RUN + ["--run-dir", str(tmp_path / "killed"), "--train.steps", steps])
    deadline = time.time() + 120
    while not (tmp_path / "killed" / "checkpoints" / "step-00000040").exists():
        assert victim.poll() is None, "the run ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.005)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    done = sorted(p.name for p in (tmp_path / "killed" / "checkpoints").iterdir())
    assert "step-00000300" not in done  # it really was killed mid-run

    subprocess.run(RUN[:5] + ["--resume", str(tmp_path / "killed")], check=True)
    a, b = weights(tmp_path / "whole", 300), weights(tmp_path / "killed", 300)
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k] == b[k]).all(), k
    lines = (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()
    steps_logged = [json.loads(x)["step"] for x in lines if json.loads(x)["split"] == "train"]
    assert steps_logged == sorted(set(steps_logged))  # no step logged twice after the resume


def test_corrupted_checkpoint_gives_a_clear_error(tmp_path):
    run = tmp_path / "run"
    subprocess.run(RUN + ["--run-dir", str(run), "--train.steps", "20"], check=True)
    (run / "checkpoints" / "step-00000020" / "model.safetensors").write_bytes(b"\x00" * 10)
    out = subprocess.run(RUN[:5] + ["--resume", str(run), "--train.steps", "30"], capture_output=True, text=True)
    assert out.returncode == 2
    assert "step-00000020/model.safetensors: cannot read the weights" in out.stderr
    assert "Traceback" not in out.stderr


def _classify_file(tmp_path):
    """Padded examples of 3-12 steps: the DDP share of a padded batch keeps its lengths."""
    import numpy as np

    rng = np.random.default_rng(0)
    path = tmp_path / "examples.jsonl"
    path.write_text("".join(json.dumps({"sequence": rng.normal(size=(int(rng.integers(3, 13)), 2)).tolist(),
                                        "label": str(i % 3)}) + "\n" for i in range(90)))
    return ["--data.task", "classify", "--data.path", str(path), "--model.bidirectional", "true"]


@pytest.mark.parametrize("task", ["forecast", "classify"])
def test_ddp_two_gloo_processes_match_one(tmp_path, task):
    data = ["--data.task", "forecast", "--data.seq_length", "20"] if task == "forecast" else _classify_file(tmp_path)
    common = [*data, "--model.hidden_size", "16", "--model.num_layers", "1",
              "--model.dropout", "0", "--data.batch_size", "8", "--train.steps", "20",
              "--train.log_every", "5", "--train.eval_every", "10", "--train.checkpoint_every", "10",
              "--train.device", "cpu"]
    subprocess.run([sys.executable, "-m", "rnnkit.cli.main", "-q", "train", "--run-dir", str(tmp_path / "one"),
                    *common], check=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                    str(29517 + (task == "classify")), "-m", "rnnkit.cli.main", "-q", "train", "--run-dir",
                    str(tmp_path / "two"), *common],
                   check=True, env=env, timeout=300)

    def losses(run):
        return [(r["step"], r["split"], r["loss"]) for r in map(json.loads, (run / "metrics.jsonl").read_text()
                                                                 .splitlines())]

    one, two = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert [r[:2] for r in one] == [r[:2] for r in two]
    for (_, _, a), (_, _, b) in zip(one, two, strict=True):
        assert a == pytest.approx(b, rel=1e-4)


MEMORY_SCRIPT = """
import sys, torch
sys.path.insert(0, {tests!r})
from training.helpers import SineStreamTask, config
from rnnkit.training import Trainer
T, k = int(sys.argv[1]), int(sys.argv[2])
cfg = config(data__batch_size=1, data__seq_length=k, train__steps=max(1, (T - 1) // k), model__hidden_size=256,
             train__eval_every=10**6, train__checkpoint_every=10**6, train__log_every=10**6)
task = SineStreamTask(cfg, length=T + 501)
Trainer(cfg, task, sys.argv[3], progress=False).fit()
# VmHWM: this process's own peak (ru_maxrss would include the parent's, kept across exec)
print(next(int(line.split()[1]) for line in open('/proc/self/status') if line.startswith('VmHWM')))
"""


def _peak_kib(tmp_path, T, k, name):
    script = MEMORY_SCRIPT.format(tests=os.path.dirname(os.path.dirname(__file__)))
    out = subprocess.run([sys.executable, "-c", script, str(T), str(k), str(tmp_path / name)], capture_output=True,
                         text=True, check=True)
    return int(out.stdout.split()[-1])


def test_truncated_bptt_memory_is_flat_in_sequence_length(tmp_path):
    short = _peak_kib(tmp_path, 500, 50, "short")
    long = _peak_kib(tmp_path, 10_000, 50, "long")
    full = _peak_kib(tmp_path, 10_000, 10_000, "full")  # the same 10,000 steps as one BPTT graph
    assert long < 1.15 * short, (short, long)
    assert full > long + 30_000, (long, full)  # full BPTT over 10,000 steps needs > 30 MB more


AWD = ["--model.variational_dropout", "true", "--model.weight_dropout", "0.3"]
ZONEOUT = ["--model.zoneout", "0.1,0.4"]


@pytest.mark.parametrize("regularisation", [[], AWD, ZONEOUT], ids=["dropout", "variational+weight-dropout", "zoneout"])
@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not __import__("torch").cuda.is_available(), reason="needs a CUDA device"))])
def test_a_run_with_dropout_stopped_and_resumed_equals_one_run(tmp_path, device, regularisation):
    """Every device's random-number state is in the checkpoint, so dropout continues the same masks after a
    stop (here at a finished run extended with --train.steps) as after a kill."""
    opts = ["--train.device", device, "--model.dropout", "0.3", *regularisation]
    subprocess.run(RUN + opts + ["--run-dir", str(tmp_path / "whole"), "--train.steps", "40"], check=True)
    subprocess.run(RUN + opts + ["--run-dir", str(tmp_path / "split"), "--train.steps", "20"], check=True)
    subprocess.run(RUN[:5] + ["--resume", str(tmp_path / "split"), "--train.steps", "40"], check=True)
    a, b = weights(tmp_path / "whole", 40), weights(tmp_path / "split", 40)
    for k in a:
        assert (a[k] == b[k]).all(), k

"""Mixed precision (rnnkit.precision, --train.precision): every cell under bf16 autocast stays close to fp32 with
fp32 states, runs train / resume / evaluate / generate in any precision from fp32 checkpoints, fp16 trains with a
gradient scaler, and the choice of precision falls back with its reason."""

import json

import pytest
import torch
from safetensors.torch import load_file

from rnnkit import RNN, native, precision
from rnnkit.cells.base import state_tensors
from rnnkit.cli.main import main

from ..conftest import cell_kwargs


def test_every_cell_under_bf16_autocast_stays_close_to_fp32(cell_name):
    """Outputs, the input gradient and every weight gradient within 5% of the largest fp32 value (bf16 keeps 8
    bits of mantissa); the final state comes back in fp32 (it is carried on)."""
    torch.manual_seed(0)
    rnn = RNN(6, 16, num_layers=2, cell=cell_name, **cell_kwargs(cell_name))
    if cell_name == "layernorm-lstm":
        # at its initialisation (gains 1, H = 16) this network expands a perturbation of its input at every step
        # (the normalised recurrent term has unit variance whatever the weights' scale), so any rounding grows along
        # the sequence, bf16's or not; with γ_h = 0.5 it barely grows
        # (tests/cells/test_layernorm.py::test_a_small_layernorm_lstm_expands_perturbations_at_initialisation)
        with torch.no_grad():
            for cell in rnn.cells:
                cell.ln_h_gain.fill_(0.5)
    x = torch.randn(4, 9, 6)

    def run(bf16: bool):
        xg = x.clone().requires_grad_(True)
        with precision.autocast("bf16" if bf16 else "fp32", "cpu"):
            out, state = rnn(xg)
        loss = out.float().pow(2).mean() + sum(s.float().pow(2).mean() for s in state_tensors(state))
        return out.detach().float(), state, torch.autograd.grad(loss, [xg, *rnn.parameters()], allow_unused=True)

    ref_out, _, ref_grads = run(False)
    out, state, grads = run(True)
    assert all(s.dtype == torch.float32 for s in state_tensors(state))
    torch.testing.assert_close(out, ref_out, rtol=0, atol=0.05 * float(ref_out.abs().max()))
    for g, r in zip(grads, ref_grads):
        if r is not None:
            torch.testing.assert_close(g.float(), r, rtol=0, atol=0.05 * float(r.abs().max()) + 1e-6)


def test_the_choice_falls_back_with_its_reason(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(precision, "cpu_bf16_flags", lambda: ())
    ran, why = precision.resolve("bf16", cpu)
    assert ran == "fp32" and "neither AMX nor AVX-512 BF16" in why
    assert precision.resolve("auto", cpu)[0] == "fp32"
    monkeypatch.setattr(precision, "cpu_bf16_flags", lambda: ("amx_bf16",))
    monkeypatch.setattr(precision, "probe_speedup", lambda *a: 2.4)
    assert precision.resolve("auto", cpu) == ("bf16", "auto: amx_bf16, a matrix-product probe ran 2.40x faster in bf16")
    ran, why = precision.resolve("auto", cpu, step_batch=1)  # generation one row at a time: matrix-vector products
    assert ran == "fp32" and "stepping 1 row(s)" in why
    assert precision.resolve("auto", cpu, step_batch=64)[0] == "bf16"
    assert precision.resolve("bf16", cpu, step_batch=1)[0] == "bf16"  # asked for: kept
    # few rows through rnnkit's native step kernel (it reads bf16 weights): its own probe decides
    monkeypatch.setattr(precision, "probe_step_speedup", lambda *a: 1.6)
    ran, why = precision.resolve("auto", cpu, step_batch=1, step_kernel=True)
    assert ran == "bf16" and "native step kernel" in why and "1.60x" in why
    assert precision.resolve("auto", cpu, step_batch=1)[0] == "fp32"  # a model without that kernel
    monkeypatch.setattr(precision, "probe_step_speedup", lambda *a: 1.05)
    ran, why = precision.resolve("auto", cpu, step_batch=1, step_kernel=True)
    assert ran == "fp32" and "only 1.05x" in why
    monkeypatch.setattr(precision, "probe_speedup", lambda *a: 0.6)
    assert precision.resolve("auto", cpu)[0] == "fp32"
    assert precision.resolve("bf16", cpu)[0] == "bf16"
    assert precision.resolve("fp32", cpu) == ("fp32", "as asked")
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16, fp16, auto"):
        precision.resolve("fp8", cpu)


def _text_run(tmp_path, *extra):
    from rnnkit.data import default_text

    text = tmp_path / "text.txt"
    text.write_text(default_text()[:30_000], encoding="utf-8")
    return ["-q", "train", "--data.path", str(text), "--model.hidden_size", "32", "--model.num_layers", "2",
            "--data.seq_length", "32", "--data.batch_size", "8", "--train.eval_every", "15",
            "--train.checkpoint_every", "10", "--train.lr", "0.01", *extra]


@pytest.mark.skipif(native.extension() is None, reason="needs rnnkit's native kernels")
def test_the_step_probe_and_which_stacks_step_natively():
    """The step probe times the native kernel itself; a one-direction stack of a family of the native stack step
    counts (every such family reads bf16 weights), not a bidirectional one, an LSTM with projection or a cell
    without a stack step."""
    assert precision.probe_step_speedup() > 0
    for cell in ("lstm", "gru", "gru-cho", "mut1", "mut2", "mut3", "peephole-lstm", "rnn"):
        assert RNN(4, 8, num_layers=2, cell=cell).native_stack_steps(), cell
    assert not RNN(4, 8, cell="lstm", bidirectional=True).native_stack_steps()
    assert not RNN(4, 8, cell="lstm", proj_size=4).native_stack_steps()
    assert not RNN(4, 8, cell="jordan", output_size=8).native_stack_steps()


def test_a_bf16_run_keeps_fp32_weights_and_evaluates_in_any_precision(tmp_path, capsys):
    run = tmp_path / "run"
    assert main([*_text_run(tmp_path, "--train.precision", "bf16", "--train.steps", "30"), "--run-dir", str(run)]) == 0
    note = json.loads((run / "precision.json").read_text())
    assert note["asked"] == "bf16" and note["ran"] == precision.resolve("bf16", torch.device("cpu"))[0]
    assert all(t.dtype == torch.float32 for t in load_file(str(run / "model.safetensors")).values())
    capsys.readouterr()
    losses = {}
    for p in ("fp32", "bf16"):
        assert main(["evaluate", str(run), "--train.precision", p]) == 0
        losses[p] = float(capsys.readouterr().out.split("loss")[-1].split()[0])
    assert losses["bf16"] == pytest.approx(losses["fp32"], abs=0.03)
    assert main(["generate", str(run), "--length", "40", "--precision", "bf16"]) == 0
    assert len(capsys.readouterr().out) >= 40
    # auto at one row: this LSTM stack steps through the native step kernel, so the choice rests on its probe
    assert main(["generate", str(run), "--length", "40", "--precision", "auto"]) == 0
    err = capsys.readouterr().err
    if native.extension() is not None and precision.cpu_bf16_flags():
        assert "native step kernel" in err
    # an fp32 run resumes in bf16 (any precision continues from the fp32 checkpoint)
    other = tmp_path / "other"
    assert main([*_text_run(tmp_path, "--train.steps", "20"), "--run-dir", str(other)]) == 0
    assert main(["-q", "train", "--resume", str(other), "--train.steps", "30", "--train.precision", "bf16"]) == 0
    assert json.loads((other / "precision.json").read_text())["asked"] == "bf16"


def test_fp16_trains_with_a_gradient_scaler_and_resumes_with_it(tmp_path, monkeypatch):
    """fp16 is for CUDA GPUs; its trainer path (loss scaling, unscaling before clipping, overflow steps left to the
    scaler, the scale in every checkpoint and back on resume, so a stopped and resumed run equals one run) runs
    here on the CPU with a cell whose kernels have an fp16 CPU path (rnnkit's loop)."""
    with pytest.raises(ValueError, match="fp16 is for CUDA GPUs"):
        precision.resolve("fp16", torch.device("cpu"))
    monkeypatch.setattr(precision, "resolve", lambda asked, device: ("fp16", "forced for the test"))
    args = _text_run(tmp_path, "--train.precision", "fp16", "--model.cell", "mut1")
    assert main([*args, "--run-dir", str(tmp_path / "whole"), "--train.steps", "30"]) == 0
    assert main([*args, "--run-dir", str(tmp_path / "part"), "--train.steps", "20"]) == 0
    state = json.loads((tmp_path / "part" / "checkpoints" / "step-00000020" / "trainer.json").read_text())
    assert state["scaler"]["scale"] > 0
    assert main(["-q", "train", "--resume", str(tmp_path / "part"), "--train.steps", "30"]) == 0
    a = load_file(str(tmp_path / "whole" / "checkpoints" / "step-00000030" / "model.safetensors"))
    b = load_file(str(tmp_path / "part" / "checkpoints" / "step-00000030" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    records = [json.loads(line) for line in (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()]
    assert all(r["loss"] == r["loss"] for r in records)  # finite (no NaN) losses throughout


def test_an_lstm_under_bf16_runs_where_onednn_has_no_bf16_lstm(monkeypatch):
    """On a CPU without AVX-512 BF16 / AMX, oneDNN builds no bf16 LSTM primitive (torch.nn.LSTM under bf16 autocast
    raises there): the layer runs the cell on rnnkit's own kernels instead, with the same results as fp32."""
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    torch.manual_seed(0)
    rnn = RNN(5, 12, num_layers=2, cell="lstm")
    x = torch.randn(3, 7, 5)
    with torch.no_grad(), precision.autocast("bf16", "cpu"):
        assert not rnn._torch_kernel.runs_under("cpu")
        out, (h, c) = rnn(x)
    with torch.no_grad():
        ref, _ = rnn(x)
    assert c.dtype == torch.float32
    torch.testing.assert_close(out.float(), ref, rtol=0, atol=0.05 * float(ref.abs().max()))

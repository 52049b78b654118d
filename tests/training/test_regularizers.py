"""Pascanu et al.'s gradient-norm regulariser against Ω computed directly from its definition (explicit Jacobians of
a tanh Elman network), its gradient, and the recorder that feeds it."""

import torch

from rnnkit import RNN
from rnnkit.layers.recurrent import StepRecorder
from rnnkit.training.regularizers import gradient_norm_regularizer


def _direct_omega(W, U, b, x, target):
    """h_t = tanh(W h_{t-1} + U x_t + b); L = mean over rows of (Σ h_T − target)²; Ω by the definition with the
    Jacobian ∂h_{k+1}/∂h_k = diag(1 − h_{k+1}²) W written out, ∂L/∂h_{k+1} and h_k held constant."""
    B, T, _ = x.shape
    h = torch.zeros(B, W.shape[0], dtype=x.dtype)
    hs = []
    for t in range(T):
        h = torch.tanh(h @ W.T + x[:, t] @ U.T + b)
        hs.append(h)
    loss = ((hs[-1].sum(1) - target) ** 2).mean()
    grads = torch.autograd.grad(loss, hs, retain_graph=True)
    omega = 0
    for k in range(T - 1):
        v = grads[k + 1].detach()
        h_next = torch.tanh(hs[k].detach() @ W.T + x[:, k + 1] @ U.T + b)  # = hs[k + 1], θ's immediate effect
        jvp = (v * (1 - h_next ** 2)) @ W  # v · diag(1 − h²) W, per row
        ratio = jvp.norm(dim=1) / v.norm(dim=1)
        omega = omega + ((ratio - 1) ** 2).mean()
    return loss, omega


def test_omega_equals_the_definition_and_its_gradient():
    torch.manual_seed(0)
    rnn = RNN(3, 5, cell="rnn").double()
    x, target = torch.randn(4, 7, 3, dtype=torch.float64), torch.randn(4, dtype=torch.float64)
    with StepRecorder() as rec:
        out, _ = rnn(x)
    loss = ((out[:, -1].sum(1) - target) ** 2).mean()
    omega = gradient_norm_regularizer(loss, rec.steps)
    cell = rnn.cells[0]
    W, U, b = cell.weight_hh, cell.weight_ih, cell.bias_ih
    loss_direct, omega_direct = _direct_omega(W, U, b, x, target)
    torch.testing.assert_close(loss, loss_direct)
    torch.testing.assert_close(omega, omega_direct)
    g = torch.autograd.grad(omega, [W, U, b])
    g_direct = torch.autograd.grad(omega_direct, [W, U, b])
    for a, e in zip(g, g_direct):
        torch.testing.assert_close(a, e)


def test_recorder_forces_the_loop_and_skips_padding():
    torch.manual_seed(1)
    rnn = RNN(2, 4, num_layers=2, cell="lstm").double()
    x = torch.randn(3, 6, 2, dtype=torch.float64)
    with StepRecorder() as rec:
        out, _ = rnn(x, lengths=[6, 3, 2])
    assert len(rec.steps) == 2 * 6  # two layers, every step of the loop (a fused kernel records nothing)
    assert not StepRecorder.active
    loss = out.pow(2).sum()
    omega = gradient_norm_regularizer(loss, rec.steps)
    assert omega > 0 and omega.requires_grad
    # a row's padded steps add nothing: the same Ω as the rows alone, weighted by their share of the batch
    parts = []
    for i, n in enumerate([6, 3, 2]):
        with StepRecorder() as r:
            o, _ = rnn(x[i:i + 1, :n])
        parts.append(gradient_norm_regularizer(o.pow(2).sum(), r.steps))
    torch.testing.assert_close(omega, sum(parts) / 3)


def test_trainer_adds_lambda_omega(tmp_path):
    """train.gradient_regularizer λ: the update's gradient is that of L + λΩ (one update of plain SGD, compared
    with the same update computed by hand)."""
    from rnnkit.config import build_config
    from rnnkit.tasks import TASKS
    from rnnkit.training import Trainer

    overrides = {"data.task": "adding", "data.lag": "6", "data.batch_size": "4", "data.num_examples": "4",
                 "model.cell": "rnn", "model.hidden_size": "5", "model.num_layers": "1", "model.dropout": "0",
                 "train.optimizer": "sgd", "train.lr": "0.1", "train.clip_norm": "0", "train.steps": "1",
                 "train.gradient_regularizer": "0.5", "train.seed": "3", "train.device": "cpu"}
    config = build_config(None, overrides)
    task = TASKS["adding"](config)
    trainer = Trainer(config, task, tmp_path / "run", progress=False)
    model = trainer.module
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    batch = task.train.chunk(0)
    with StepRecorder() as rec:
        loss = model(batch.inputs, batch.targets).loss
    total = loss + 0.5 * gradient_norm_regularizer(loss, rec.steps)
    grads = dict(zip(before, torch.autograd.grad(total, list(model.parameters()))))
    trainer._update(batch)
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), before[name] - 0.1 * grads[name])

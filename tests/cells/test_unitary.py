"""The uRNN (Arjovsky et al. 2016): W stays unitary through training, the step equals the paper's equations written
with explicit matrices, modReLU equals its formula, gradients check in float64 (complex parts inside)."""

import math

import torch

from rnnkit import RNN
from rnnkit.cells.unitary import UnitaryCell, mod_relu


def _dense_w(cell: UnitaryCell) -> torch.Tensor:
    """W = D3 R2 F⁻¹ D2 Π R1 F D1 from explicit complex matrices."""
    N = cell.hidden_size
    c = torch.complex128
    D = [torch.diag(torch.exp(1j * cell.theta[j].detach().double())).to(c) for j in range(3)]
    v = [torch.complex(cell.reflection[j, 0].detach().double(), cell.reflection[j, 1].detach().double())
         for j in range(2)]
    R = [torch.eye(N, dtype=c) - 2 * torch.outer(u, u.conj()) / (u.abs() ** 2).sum() for u in v]
    n = torch.arange(N, dtype=torch.float64)
    F = torch.exp(-2j * math.pi * torch.outer(n, n) / N).to(c) / math.sqrt(N)
    P = torch.eye(N, dtype=c)[cell.permutation]  # (Π h)_i = h_{perm[i]}
    return D[2] @ R[1] @ F.conj().T @ D[1] @ P @ R[0] @ F @ D[0]


def test_step_equals_the_equations_with_explicit_matrices():
    cell = UnitaryCell(3, 6).double()
    with torch.no_grad():
        cell.bias.uniform_(-0.5, 0.2)
    x, state = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 12, dtype=torch.float64)
    y, _ = cell(x, state)
    h = torch.complex(state[:, :6], state[:, 6:])
    V = torch.complex(cell.weight_ih[:6].detach(), cell.weight_ih[6:].detach())
    z = h @ _dense_w(cell).T + x.to(torch.complex128) @ V.T
    magnitude = z.abs()
    expected = torch.where(magnitude + cell.bias.detach() >= 0, (magnitude + cell.bias.detach()) * z / magnitude, 0)
    torch.testing.assert_close(y, torch.cat([expected.real, expected.imag], -1), atol=1e-5, rtol=1e-4)  # modReLU ε
    torch.testing.assert_close(cell.matrix(), _dense_w(cell))


def test_mod_relu_formula():
    z = torch.tensor([3 + 4j, -0.3 + 0.4j, 0j], dtype=torch.complex128)
    b = torch.tensor([-1.0, -1.0, 0.5], dtype=torch.float64)
    out = mod_relu(z, b)
    torch.testing.assert_close(out[0], torch.tensor(4 * (3 + 4j) / 5, dtype=torch.complex128), atol=1e-5, rtol=0)
    assert out[1] == 0 and out[2] == 0  # |z| + b < 0; z = 0 has no phase


def test_w_stays_unitary_through_many_optimizer_steps():
    torch.manual_seed(0)
    rnn = RNN(2, 16, cell="unitary").double()
    opt = torch.optim.Adam(rnn.parameters(), lr=0.05)
    for _ in range(300):
        out, _ = rnn(torch.randn(8, 10, 2, dtype=torch.float64))
        loss = (out[:, -1] - 1).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    W = rnn.cells[0].matrix()
    assert (W.conj().T @ W - torch.eye(16, dtype=W.dtype)).abs().max() < 1e-6
    h = torch.randn(5, 16, dtype=torch.complex128)
    torch.testing.assert_close(rnn.cells[0].recurrence(h).abs().pow(2).sum(1), h.abs().pow(2).sum(1))


def test_float32_matrix_is_unitary_and_layer_gradcheck():
    cell = UnitaryCell(2, 8)
    W = cell.matrix()
    assert (W.conj().T @ W - torch.eye(8, dtype=W.dtype)).abs().max() < 1e-6
    rnn = RNN(2, 3, cell="unitary", num_layers=2, bidirectional=True).double()
    x = torch.randn(2, 4, 2, dtype=torch.float64, requires_grad=True)
    params = [p for p in rnn.parameters()]
    assert torch.autograd.gradcheck(lambda x, *ps: rnn(x, lengths=[4, 2])[0], (x, *params))

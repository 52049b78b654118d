"""How a node's state is composed from its children's: the recursive network, the recursive neural tensor network and
the two Tree-LSTMs, each written as its paper writes it (seed 003: "recursive neural networks ... might not use
standard ANN operations → tensor operations, binary forms").

Every composition works on a whole level at once: ``forward(x (n, E), children (n, K, S), mask (n, K)) -> (n, S)``
for n nodes with up to K children (``mask`` False where a child is missing; its state is zero), ``leaf(x)`` for
nodes without children, and ``hidden(state) -> (n, H)``, the part a classifier reads (a Tree-LSTM's state is
[h; c]). ``x`` is the node's word vector (zero for a node without a word).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Composition(nn.Module):
    binary = False  # True: at most two children, the left and the right one (order matters)
    leaf_is_word = False  # True: a leaf's state is its word vector (input_size must equal hidden_size)

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        if self.leaf_is_word and input_size != hidden_size:
            raise ValueError(f"{type(self).__name__}: a leaf's state is its word vector, so embedding_size must equal "
                             f"hidden_size; got {input_size} and {hidden_size}")
        self.input_size, self.hidden_size = input_size, hidden_size
        self.state_size = hidden_size

    def hidden(self, state: Tensor) -> Tensor:
        return state[..., : self.hidden_size]

    def leaf(self, x: Tensor) -> Tensor:
        if self.leaf_is_word:
            return x
        return self(x, x.new_zeros(len(x), 1, self.state_size), torch.zeros(len(x), 1, dtype=torch.bool,
                                                                             device=x.device))


def _near_sum(d: int) -> Tensor:
    """[I + U_1, I + U_2], U uniform in ±1/(4√d): the composition starts near h_l + h_r, so a word's vector reaches
    the root of a deep tree (Stanford CoreNLP's initialisation of the RNTN's W)."""
    r = 1 / (4 * d ** 0.5)
    eye = torch.eye(d)
    return torch.cat([eye + torch.empty(d, d).uniform_(-r, r), eye + torch.empty(d, d).uniform_(-r, r)], 1)


class RecursiveNN(Composition):
    """The recursive network of Socher et al. 2011/2013 (binary trees):

        leaf:  h = x (the word vector),     node:  h = tanh(W [h_l; h_r] + b)

    W starts near [I, I] (see :func:`_near_sum`), b at zero.
    """

    binary, leaf_is_word = True, True

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size)
        self.W = nn.Linear(2 * hidden_size, hidden_size)
        with torch.no_grad():
            self.W.weight.copy_(_near_sum(hidden_size))
            self.W.bias.zero_()

    def forward(self, x: Tensor, children: Tensor, mask: Tensor) -> Tensor:
        return torch.tanh(self.W(children.flatten(1)))


class RNTN(Composition):
    """The recursive neural tensor network (Socher et al. 2013, eq. 3): with c = [h_l; h_r] ∈ R^{2d},

        h = tanh(cᵀ V^{[1:d]} c + W c + b),   V ∈ R^{d × 2d × 2d}   (slice k gives the k-th output)

    leaves are word vectors. W starts near [I, I] (:func:`_near_sum`), b at zero, V small (uniform ±1/(4d)), as in
    Stanford CoreNLP's implementation, so the network starts near a plain sum of its children.

    V is stored scaled by 2d (``tensor`` = ``V`` / 2d): each output sums (2d)² tensor entries against 2d entries of
    W, so with Adam's equal step per parameter an unscaled V moves the bilinear term 2d times faster than W c, and
    training stalls.
    """

    binary, leaf_is_word = True, True

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size)
        d = hidden_size
        self.W = nn.Linear(2 * d, d)
        with torch.no_grad():
            self.W.weight.copy_(_near_sum(d))
            self.W.bias.zero_()
        self.V = nn.Parameter(torch.empty(d, 2 * d, 2 * d).uniform_(-1 / (4 * d), 1 / (4 * d)) * (2 * d))

    @property
    def tensor(self) -> Tensor:
        """V^{[1:d]} of the equation."""
        return self.V / (2 * self.hidden_size)

    def forward(self, x: Tensor, children: Tensor, mask: Tensor) -> Tensor:
        c = children.flatten(1)  # (n, 2d)
        bilinear = torch.einsum("ni,kij,nj->nk", c, self.tensor, c)
        return torch.tanh(bilinear + self.W(c))


class ChildSumTreeLSTM(Composition):
    """Child-Sum Tree-LSTM (Tai et al. 2015, eq. 2-8), any number of children, unordered:

        h̃ = Σ_k h_k
        i = σ(W_i x + U_i h̃ + b_i),   o = σ(W_o x + U_o h̃ + b_o),   u = tanh(W_u x + U_u h̃ + b_u)
        f_k = σ(W_f x + U_f h_k + b_f)   (one forget gate per child)
        c = i ⊙ u + Σ_k f_k ⊙ c_k,        h = o ⊙ tanh(c)

    The state is [h; c].
    """

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size)
        d = hidden_size
        self.state_size = 2 * d
        self.W = nn.Linear(input_size, 4 * d)  # i, o, u, f
        self.U_iou = nn.Linear(d, 3 * d, bias=False)
        self.U_f = nn.Linear(d, d, bias=False)

    def forward(self, x: Tensor, children: Tensor, mask: Tensor) -> Tensor:
        d = self.hidden_size
        m = mask.unsqueeze(-1).to(children.dtype)
        h_k, c_k = children[..., :d] * m, children[..., d:] * m
        wx = self.W(x)
        i, o, u = (wx[:, : 3 * d] + self.U_iou(h_k.sum(1))).chunk(3, -1)
        f_k = torch.sigmoid(wx[:, None, 3 * d:] + self.U_f(h_k))  # (n, K, d)
        c = torch.sigmoid(i) * torch.tanh(u) + (f_k * c_k * m).sum(1)
        return torch.cat([torch.sigmoid(o) * torch.tanh(c), c], -1)


class NaryTreeLSTM(Composition):
    """Binary N-ary Tree-LSTM (Tai et al. 2015, eq. 9-14, N = 2): every gate sees each child through its own matrix,
    and each child has a forget gate that reads both children:

        i = σ(W_i x + Σ_l U_l^i h_l + b_i),   o, u likewise (u with tanh)
        f_k = σ(W_f x + Σ_l U_{kl}^f h_l + b_f),   c = i ⊙ u + Σ_l f_l ⊙ c_l,   h = o ⊙ tanh(c)

    The state is [h; c]; a missing child counts as zero.
    """

    binary = True

    def __init__(self, input_size: int, hidden_size: int, arity: int = 2):
        super().__init__(input_size, hidden_size)
        d = hidden_size
        self.arity, self.state_size = arity, 2 * d
        self.W = nn.Linear(input_size, (3 + arity) * d)
        self.U = nn.Linear(arity * d, (3 + arity) * d, bias=False)  # [U^i; U^o; U^u; U^f_1..N] over [h_1; ...; h_N]

    def forward(self, x: Tensor, children: Tensor, mask: Tensor) -> Tensor:
        d, n = self.hidden_size, len(x)
        if children.shape[1] < self.arity:
            pad = children.new_zeros(n, self.arity - children.shape[1], children.shape[2])
            children = torch.cat([children, pad], 1)
            mask = torch.cat([mask, mask.new_zeros(n, pad.shape[1])], 1)
        m = mask.unsqueeze(-1).to(children.dtype)
        h, c_k = (children[..., :d] * m), children[..., d:] * m
        z = self.W(x) + self.U(h.flatten(1))
        i, o, u = z[:, :d], z[:, d: 2 * d], z[:, 2 * d: 3 * d]
        f = torch.sigmoid(z[:, 3 * d:].view(n, self.arity, d))
        c = torch.sigmoid(i) * torch.tanh(u) + (f * c_k).sum(1)
        return torch.cat([torch.sigmoid(o) * torch.tanh(c), c], -1)


COMPOSITIONS = {"tree-rnn": RecursiveNN, "rntn": RNTN, "child-sum-lstm": ChildSumTreeLSTM, "nary-lstm": NaryTreeLSTM}


def make_composition(name: str, input_size: int, hidden_size: int) -> Composition:
    if name not in COMPOSITIONS:
        raise ValueError(f"tree composition must be one of {list(COMPOSITIONS)}; got {name!r}")
    return COMPOSITIONS[name](input_size, hidden_size)


"""Tree encoders and the node classifier over padded node tables (see :func:`rnnkit.trees.tree.node_table`).

Level batching: all nodes of one height, across every tree of the batch, are composed by one call, so a batch
costs O(depth) compositions instead of one per node (the dynamic batching of Looks et al. 2017, as in DGL's and
Tai et al.'s batched Tree-LSTMs). States live in one buffer of rows (B·N + 1, S), the last row zero (a missing
child); each level gathers its children's rows and writes its own. :meth:`TreeEncoder.node_by_node` is the
one-node-at-a-time reference, equal up to rounding.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..data.batches import IGNORE_INDEX
from ..models.output import Output, cross_entropy
from .compositions import make_composition


def _real_nodes(lengths: Tensor | None, B: int, N: int, device) -> Tensor:
    if lengths is None:
        return torch.ones(B, N, dtype=torch.bool, device=device)
    return torch.arange(N, device=device)[None] < lengths.to(device)[:, None]


class TreeEncoder(nn.Module):
    """Word embeddings, then a composition over every tree: ``forward(nodes (B, N, 2 + K), lengths (B,) | None) ->
    hidden states (B, N, H)`` in the node table's post-order (a tree's root at row ``lengths - 1``), zero at padding.

    ``nodes[..., 0]``: token ids (0: padding / no word, a zero vector); ``nodes[..., 1]``: heights;
    ``nodes[..., 2:]``: child row + 1 (0: none).
    """

    def __init__(self, vocab_size: int, composition: str = "child-sum-lstm", embedding_size: int = 300,
                 hidden_size: int = 150, dropout: float = 0.0):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_size, padding_idx=0)
        self.composition = make_composition(composition, embedding_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.output_size = hidden_size

    def _parts(self, nodes: Tensor, lengths: Tensor | None):
        if nodes.dim() != 3 or nodes.shape[-1] < 3:
            raise ValueError(f"expected node tables (batch, nodes, 2 + max children); got shape {tuple(nodes.shape)}")
        B, N, _ = nodes.shape
        x = self.dropout(self.embedding(nodes[..., 0])).flatten(0, 1)  # (B·N, E)
        real = _real_nodes(lengths, B, N, nodes.device).flatten()
        # child rows in the flat buffer; B·N (the zero row) where a child is missing
        offset = (torch.arange(B, device=nodes.device) * N)[:, None, None]
        kids = nodes[..., 2:]
        kids = torch.where(kids > 0, kids - 1 + offset, B * N).flatten(0, 1)  # (B·N, K)
        return B, N, x, real, nodes[..., 1].flatten(), kids

    def forward(self, nodes: Tensor, lengths: Tensor | None = None) -> Tensor:
        B, N, x, real, height, kids = self._parts(nodes, lengths)
        comp = self.composition
        states = x.new_zeros(B * N + 1, comp.state_size)
        # the real rows sorted by height, cut into levels: one sort, not a search per level
        height = torch.where(real, height, -1)
        order = torch.argsort(height, stable=True)
        sizes = torch.bincount(height[order] + 1).tolist()
        levels = order.split(sizes)[1:]  # drop the padding (height -1)
        for level, rows in enumerate(levels):
            if level == 0:
                new = comp.leaf(x[rows])
            else:
                k = kids[rows]  # (n, K)
                children = states.index_select(0, k.flatten()).view(len(rows), k.shape[1], -1)
                new = comp(x[rows], children, k != B * N)
            # in place: the gathers above saved only indices for backward, so overwriting rows is safe (autograd's
            # version check would refuse otherwise)
            states.index_copy_(0, rows, new)
        return comp.hidden(states[: B * N]).view(B, N, -1)

    def node_by_node(self, nodes: Tensor, lengths: Tensor | None = None) -> Tensor:
        """The same states, composed one node at a time in post-order (the plain recursive implementation)."""
        B, N, x, real, height, kids = self._parts(nodes, lengths)
        comp = self.composition
        zero = x.new_zeros(1, comp.state_size)
        states: dict[int, Tensor] = {}
        out = []
        for r in range(B * N):
            if not bool(real[r]):
                out.append(zero)
                continue
            if int(height[r]) == 0:
                s = comp.leaf(x[r: r + 1])
            else:
                present = [int(k) for k in kids[r] if int(k) != B * N]
                children = torch.cat([states[k] for k in present]).unsqueeze(0)
                s = comp(x[r: r + 1], children, torch.ones(1, len(present), dtype=torch.bool, device=x.device))
            states[r] = s
            out.append(s)
        return comp.hidden(torch.cat(out)).view(B, N, -1)


class TreeClassifier(nn.Module):
    """A class for every node: :class:`TreeEncoder`, dropout, a linear layer (Socher et al. 2013's softmax at each
    node). ``forward(nodes, targets (B, N) | None, state=None, lengths=None) -> Output(logits (B, N, C), mean
    cross-entropy over the labelled nodes (IGNORE_INDEX elsewhere), None)``. ``node_by_node=True`` uses the
    one-node-at-a-time reference encoder."""

    def __init__(self, num_classes: int, vocab_size: int, composition: str = "child-sum-lstm",
                 embedding_size: int = 300, hidden_size: int = 150, dropout: float = 0.0):
        super().__init__()
        self.encoder = TreeEncoder(vocab_size, composition, embedding_size, hidden_size, dropout)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, num_classes)
        self.node_by_node = False

    def forward(self, nodes: Tensor, targets: Tensor | None = None, state=None,
                lengths: Tensor | None = None) -> Output:
        encode = self.encoder.node_by_node if self.node_by_node else self.encoder
        logits = self.head(self.dropout(encode(nodes, lengths)))
        loss = None if targets is None else cross_entropy(logits.flatten(0, 1), targets.flatten(),
                                                            ignore_index=IGNORE_INDEX)
        return Output(logits, loss, None)

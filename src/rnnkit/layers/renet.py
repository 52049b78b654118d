"""Recurrent networks over images: four recurrent passes sweep the image (seed 003: "have four nets, up, down, left,
right"), in the ReNet form of Visin et al. 2015.

:class:`ReNet` splits an image into non-overlapping p × p patches, then

1. sweeps every row of patches left → right and right → left (a bidirectional :class:`~rnnkit.layers.RNN`, the
   rows as a batch): a feature map of 2·H features per patch, each seeing its whole row;
2. sweeps every column of that map top → bottom and bottom → top: 2·H features per patch that see the whole image.

The output is a feature map (B, 2·H, rows, columns) — stackable, and a classifier's front end. Any registered cell
runs the passes. (Graves et al. 2007's multi-dimensional RNN, where a step sees its left *and* upper neighbour at
once, is the other classic form; it is not implemented here.)
"""

from __future__ import annotations

from torch import Tensor, nn

from .sequence import RNN


def sweep(features: Tensor, rnn: RNN, axis: str) -> Tensor:
    """Run the bidirectional ``rnn`` along every row (``axis="rows"``: left → right and back) or every column
    (``"columns"``: top → bottom and back) of ``features`` (B, H, W, C) → (B, H, W, 2·O), forward direction first.
    The lines are independent sequences of one batch."""
    B, H, W, C = features.shape
    if axis == "rows":
        out, _ = rnn(features.reshape(B * H, W, C))
        return out.view(B, H, W, -1)
    if axis == "columns":
        out, _ = rnn(features.transpose(1, 2).reshape(B * W, H, C))
        return out.view(B, W, H, -1).transpose(1, 2)
    raise ValueError(f"axis must be 'rows' or 'columns'; got {axis!r}")


class ReNet(nn.Module):
    """One ReNet layer: ``forward(images (B, C, H, W)) -> (B, 2 · hidden_size, H / patch, W / patch)``: patches of
    ``patch`` × ``patch`` pixels (their C·p² values a step's input), a horizontal then a vertical bidirectional
    sweep (see the module). ``cell`` names any registered cell; ``cell_kwargs`` go to it."""

    def __init__(self, in_channels: int, hidden_size: int, cell: str = "gru", patch: int = 1, **cell_kwargs):
        super().__init__()
        if patch < 1:
            raise ValueError(f"patch must be >= 1; got {patch}")
        self.in_channels, self.patch, self.output_size = in_channels, patch, 2 * hidden_size
        self.horizontal = RNN(in_channels * patch * patch, hidden_size, cell=cell, bidirectional=True, **cell_kwargs)
        self.vertical = RNN(2 * hidden_size, hidden_size, cell=cell, bidirectional=True, **cell_kwargs)

    def patches(self, images: Tensor) -> Tensor:
        """(B, C, H, W) → (B, H/p, W/p, C·p²): each patch's pixels, channel-major, row-major within the patch."""
        if images.dim() != 4 or images.shape[1] != self.in_channels:
            raise ValueError(f"ReNet expected images (batch, {self.in_channels} channels, height, width); got shape "
                             f"{tuple(images.shape)}")
        B, C, H, W = images.shape
        p = self.patch
        if H % p or W % p:
            raise ValueError(f"ReNet with patch {p}: the image height and width must be multiples of {p}; got {H}×{W}")
        x = images.reshape(B, C, H // p, p, W // p, p).permute(0, 2, 4, 1, 3, 5)
        return x.reshape(B, H // p, W // p, C * p * p)

    def forward(self, images: Tensor) -> Tensor:
        x = sweep(self.patches(images), self.horizontal, "rows")
        return sweep(x, self.vertical, "columns").permute(0, 3, 1, 2).contiguous()


def stack_renet(in_channels: int, hidden_size: int, num_layers: int, cell: str = "gru", patch: int = 1,
                **cell_kwargs) -> nn.Sequential:
    """``num_layers`` ReNet layers, the first with ``patch``-sized patches, the rest pixel by pixel."""
    layers, c = [], in_channels
    for i in range(num_layers):
        layers.append(ReNet(c, hidden_size, cell, patch if i == 0 else 1, **cell_kwargs))
        c = layers[-1].output_size
    return nn.Sequential(*layers)

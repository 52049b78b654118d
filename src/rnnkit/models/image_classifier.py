"""Image → class with three front ends on equal terms: a 2-D recurrent network (stacked :class:`ReNet` layers,
four sweeps each), a plain row-by-row recurrent network (each pixel row a step), and a small CNN (the captioning
encoder's blocks). Each ends in dropout and a linear layer on its flattened features.

``forward(images (B, C, H, W), targets (B,) | None, state=None) -> Output(logits (B, classes), mean
cross-entropy, None)``.
"""

from __future__ import annotations

from torch import Tensor, nn

from ..layers.renet import stack_renet
from ..layers.sequence import RNN
from .captioning import ImageEncoder
from .output import Output, cross_entropy

FRONT_ENDS = ("renet", "rows", "cnn")


class ImageClassifier(nn.Module):
    """``front_end``: ``renet`` (``num_layers`` ReNet layers of ``hidden_size`` per direction, the first on
    ``patch`` × ``patch`` patches), ``rows`` (an RNN of ``num_layers`` × ``hidden_size`` reading the rows top to
    bottom, its last output), or ``cnn`` (blocks of ``channels``: conv 3×3, ReLU, max-pool 2×2)."""

    def __init__(self, num_classes: int, image_shape: tuple[int, int, int], front_end: str = "renet",
                 hidden_size: int = 64, num_layers: int = 1, cell: str = "gru", patch: int = 2,
                 channels: tuple[int, ...] = (32, 64), dropout: float = 0.0, **cell_kwargs):
        super().__init__()
        C, H, W = image_shape
        self.image_shape, self.front_end = tuple(image_shape), front_end
        if front_end == "renet":
            self.body = stack_renet(C, hidden_size, num_layers, cell, patch, **cell_kwargs)
            features = 2 * hidden_size * (H // patch) * (W // patch)
        elif front_end == "rows":
            self.body = RNN(C * W, hidden_size, num_layers, cell=cell, dropout=dropout, **cell_kwargs)
            features = self.body.output_size
        elif front_end == "cnn":
            self.body = ImageEncoder(C, tuple(channels))
            h, w = H, W
            for _ in channels:
                h, w = -(-h // 2), -(-w // 2)
            features = channels[-1] * h * w
        else:
            raise ValueError(f"front_end must be one of {list(FRONT_ENDS)}; got {front_end!r}")
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(features, num_classes)

    def features(self, images: Tensor) -> Tensor:
        if images.dim() != 4 or tuple(images.shape[1:]) != self.image_shape:
            raise ValueError(f"expected images (batch, {', '.join(map(str, self.image_shape))}) (channels, height, "
                             f"width); got shape {tuple(images.shape)}")
        if self.front_end == "rows":
            B, C, H, W = images.shape
            out, _ = self.body(images.permute(0, 2, 1, 3).reshape(B, H, C * W))
            return out[:, -1]
        if self.front_end == "cnn":
            return self.body(images)[0].flatten(1)
        return self.body(images).flatten(1)

    def forward(self, images: Tensor, targets: Tensor | None = None, state=None) -> Output:
        logits = self.head(self.dropout(self.features(images)))
        return Output(logits, None if targets is None else cross_entropy(logits, targets), None)

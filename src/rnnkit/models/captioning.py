"""Conditioned generation (seed 004's one-to-many pattern: image → caption): an image encoder whose feature map
conditions the same :class:`~rnnkit.models.seq2seq.Decoder` that translates.

* :class:`ImageEncoder`: a small CNN built here, blocks of 3×3 convolution → ReLU → 2×2 max-pooling; its last
  feature map (B, C, h, w) is read as h·w annotation vectors a_i of C features (Xu et al. 2015, "Show, Attend and
  Tell"), their mean as the summary vector.
* :class:`ImageCaptioner`: the summary becomes the decoder's initial state (``context`` ``init``; Vinyals et al.
  2015, "Show and Tell"), its input at every step (``input``) or both; with ``attention`` the decoder attends over
  the a_i at every word (spatial attention). Instead of images, any features a user computed can be given
  (``feature_size``): (B, N, F) annotation vectors or (B, F) one vector per image.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .seq2seq import Bridge, Decoder, DecoderState, EncoderDecoder, Memory


class ImageEncoder(nn.Module):
    """Images (B, C_in, H, W) → annotation vectors (B, h·w, C) in row-major grid order, and the grid (h, w).

    Each entry of ``channels`` is one block: conv 3×3 (padding 1) → ReLU → max-pool 2×2 (``pool``; a side of 1 is
    left as it is)."""

    def __init__(self, in_channels: int = 1, channels: tuple[int, ...] = (32, 64, 128), pool: bool = True,
                 dropout: float = 0.0):
        super().__init__()
        if not channels:
            raise ValueError("ImageEncoder needs at least one block (channels)")
        layers, c = [], in_channels
        for out in channels:
            layers += [nn.Conv2d(c, out, 3, padding=1), nn.ReLU()]
            if pool:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            c = out
        self.net = nn.Sequential(*layers, nn.Dropout(dropout))
        self.in_channels, self.output_size = in_channels, c

    def forward(self, images: Tensor) -> tuple[Tensor, tuple[int, int]]:
        if images.dim() != 4 or images.shape[1] != self.in_channels:
            raise ValueError(f"ImageEncoder expected images (batch, {self.in_channels}, height, width); got "
                             f"{tuple(images.shape)}")
        fmap = self.net(images)  # (B, C, h, w)
        return fmap.flatten(2).transpose(1, 2), tuple(fmap.shape[2:])


class ImageCaptioner(EncoderDecoder):
    """Image → caption: ``forward(images (B, C, H, W) or features, targets (B, T), ...)`` as
    :class:`~rnnkit.models.seq2seq.EncoderDecoder` (the decoding functions of ``rnnkit.generation.seq2seq`` work
    unchanged; α has one weight per grid cell, row-major).

    Give ``image_channels`` to learn the CNN here, or ``feature_size`` to caption precomputed features."""

    def __init__(self, target_vocab_size: int, image_channels: int | None = 1, feature_size: int | None = None,
                 channels: tuple[int, ...] = (32, 64, 128), embedding_size: int = 64, hidden_size: int = 128,
                 num_layers: int = 1, cell: str = "lstm", attention: str = "additive", context: str = "init",
                 input_feeding: bool = True, dropout: float = 0.0, pad_id: int = 0, bos_id: int = 1, eos_id: int = 2,
                 **cell_kwargs):
        super().__init__()
        if (image_channels is None) == (feature_size is None):
            raise ValueError("give exactly one of image_channels (learn a CNN on images) or feature_size "
                             "(precomputed features)")
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id
        self.image_encoder = None if feature_size is not None else ImageEncoder(image_channels, tuple(channels),
                                                                                 dropout=dropout)
        size = feature_size or self.image_encoder.output_size
        self.feature_size, self.grid = size, None
        self.decoder = Decoder(target_vocab_size, embedding_size, hidden_size, num_layers, cell, key_size=size,
                               summary_size=size, attention=attention, context=context, input_feeding=input_feeding,
                               dropout=dropout, padding_idx=pad_id, **cell_kwargs)
        self.bridge = Bridge(self.decoder.rnn, [size]) if context in ("init", "both") else None

    def features(self, inputs: Tensor) -> Tensor:
        """Annotation vectors (B, N, F) of images, or of given features ((B, F) is one vector, N = 1)."""
        if self.image_encoder is not None:
            feats, self.grid = self.image_encoder(inputs)
            return feats
        if inputs.dim() == 2:
            inputs = inputs.unsqueeze(1)
        if inputs.dim() != 3 or inputs.shape[-1] != self.feature_size:
            raise ValueError(f"ImageCaptioner expected features (batch, positions, {self.feature_size}) or (batch, "
                             f"{self.feature_size}); got {tuple(inputs.shape)}")
        return inputs

    def encode(self, inputs: Tensor, lengths: Tensor | None = None) -> tuple[Memory, DecoderState]:
        feats = self.features(inputs)
        B, N = feats.shape[:2]
        summary = feats.mean(1)
        mask = torch.ones(B, N, dtype=torch.bool, device=feats.device)
        keys = None if self.decoder.attention is None else self.decoder.attention.prepare(feats)
        initial = None if self.bridge is None else self.bridge(summary.unsqueeze(0))
        return Memory(feats, mask, keys, summary), self.decoder.start(initial, B, feats)

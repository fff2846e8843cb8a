"""A deeper, wider-seeing UNet for photographs: five levels, chroma at half resolution."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from colorcnn.models.base import ColourNet
from colorcnn.models.blocks import climb_decoders, conv_block, same_conv
from colorcnn.models.registry import register_model


class PhotoUNet(ColourNet):
    """Pixel-unshuffle by 2, then a UNet of `depth` poolings with two convolutions per level
    and NF, 2NF, 4NF... filters; the result is upsampled bilinearly back to the input size.

    Why this shape: the course nets see about 20 px around a pixel, too little to tell sky
    from sea in a 256 px photo; four poolings after the unshuffle see most of the picture.
    Chroma varies slowly, so predicting it at half resolution loses almost nothing, and it
    makes the network cost about as much per pixel as the course's UNet.
    """

    UNSHUFFLE = 2

    def __init__(
        self,
        kernel: int = 3,
        num_filters: int = 16,
        in_channels: int = 1,
        out_channels: int = 24,
        colour_width: int | None = None,
        depth: int = 4,
    ):
        super().__init__(kernel, num_filters, in_channels, out_channels, colour_width)
        if depth < 1:
            raise ValueError(f"depth must be positive, got {depth}")
        self.depth = depth
        widths = [num_filters * 2**level for level in range(depth + 1)]
        stem = in_channels * self.UNSHUFFLE**2
        self.encoders = nn.ModuleList()
        for level, width in enumerate(widths):
            before = stem if level == 0 else widths[level - 1]
            self.encoders.append(
                nn.Sequential(conv_block(before, width, kernel), conv_block(width, width, kernel))
            )
        self.decoders = nn.ModuleList(
            nn.Sequential(
                conv_block(widths[level] + widths[level + 1], widths[level], kernel),
                conv_block(widths[level], widths[level], kernel),
            )
            for level in reversed(range(depth))
        )
        self.finalconv = same_conv(widths[0], self.colour_width, kernel)
        self.pool = nn.MaxPool2d(2)

    @property
    def size_multiple(self) -> int:
        return self.UNSHUFFLE * 2**self.depth

    @property
    def hyperparameters(self) -> dict[str, int]:
        return {**super().hyperparameters, "depth": self.depth}

    def forward_activations(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        self.check_sides(x)
        height, width = x.shape[-2:]
        activations: dict[str, torch.Tensor] = {}
        skips = []
        # torch returns an empty batch unchanged, and under torchrun a process's share of a
        # small last batch can be empty. The export check comes first: testing the batch
        # size while exporting would fix the ONNX graph's batch size.
        if torch.onnx.is_in_onnx_export() or x.shape[0]:
            features = F.pixel_unshuffle(x, self.UNSHUFFLE)
        else:
            r = self.UNSHUFFLE
            features = x.new_empty(0, x.shape[1] * r * r, height // r, width // r)
        for level, encoder in enumerate(self.encoders):
            if level > 0:
                features = self.pool(features)
            features = encoder(features)
            activations[f"out{len(activations) + 1}"] = features
            skips.append(features)
        features = climb_decoders(self.decoders, features, skips[:-1], activations)
        last = F.interpolate(
            self.finalconv(features), size=(height, width), mode="bilinear", align_corners=False
        )
        return self._finish(activations, last)


@register_model
def photo_unet(**kwargs) -> PhotoUNet:
    """PhotoUNet: five levels (NF=16 to 256) that see most of a 256 px photo; for photos."""
    return PhotoUNet(**kwargs)


@register_model
def photo_unet_wide(**kwargs) -> PhotoUNet:
    """PhotoUNet with NF=24: about twice the multiply-adds, for more colour per pixel."""
    return PhotoUNet(**{"num_filters": 24, **kwargs})

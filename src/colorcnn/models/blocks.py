"""Small building blocks, so that the architectures read like the course's layer lists."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


class SameConv2d(nn.Conv2d):
    """A stride-1 convolution that keeps the image size, for odd and even kernels alike.

    For odd kernels this is the course's `padding = kernel // 2` (times the dilation). For
    even kernels (the course's kernel-size question trains 4x4) the extra row and column of
    zeros go to the bottom and right, where torch's `padding="same"` puts them: the same
    values, written out so that torch has no note to print about it and colorcnn no global
    warnings filter to hide that note.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1, **kwargs
    ):
        total = dilation * (kernel_size - 1)
        super().__init__(
            in_channels, out_channels, kernel_size, padding=total // 2, dilation=dilation, **kwargs
        )
        self.extra_padding = total % 2  # rows (and columns) of zeros below (and right)

    def pad_input(self, inputs: torch.Tensor) -> torch.Tensor:
        if not self.extra_padding:
            return inputs
        return F.pad(inputs, (0, self.extra_padding, 0, self.extra_padding))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return super().forward(self.pad_input(inputs))


def same_conv(in_channels: int, out_channels: int, kernel: int, dilation: int = 1) -> SameConv2d:
    """A stride-1 convolution that keeps the image size (SameConv2d)."""
    return SameConv2d(in_channels, out_channels, kernel, dilation=dilation)


class ConcatConv2d(SameConv2d):
    """A convolution of the concatenation of its inputs along the channels, computed as one
    convolution per input with that input's slice of the weights, summed.

    The same function and weights as nn.Conv2d over torch.cat(inputs, dim=1), without
    building the concatenation: on a CPU this skips copying the inputs, and keeps an odd
    total width (the UNet's last layer sees 24 colour channels plus the 1 grey channel) out
    of oneDNN's kernels, whose backward pass is slowest for such widths.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, **kwargs):
        padding = kwargs.pop("padding", "same")
        super().__init__(in_channels, out_channels, kernel_size, **kwargs)
        if self.groups != 1 or self.padding_mode != "zeros" or padding != "same":
            raise ValueError(
                "ConcatConv2d supports groups=1 and zero padding only, got "
                f"groups={self.groups}, padding_mode={self.padding_mode!r}, padding={padding!r}"
            )

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        widths = [part.shape[1] for part in inputs]
        if sum(widths) != self.in_channels:
            raise ValueError(f"expected {self.in_channels} channels in all, got {widths}")
        result = None
        for part, weight in zip(inputs, self.weight.split(widths, dim=1), strict=True):
            bias = self.bias if result is None else None
            term = F.conv2d(
                self.pad_input(part), weight, bias, self.stride, self.padding, self.dilation
            )
            result = term if result is None else result + term
        return result


def concat_conv(in_channels: int, out_channels: int, kernel: int) -> ConcatConv2d:
    """`same_conv` over several inputs at once (ConcatConv2d)."""
    return ConcatConv2d(in_channels, out_channels, kernel)


def conv_block(
    in_channels: int,
    out_channels: int,
    kernel: int,
    *,
    resample: nn.Module | None = None,
    resample_first: bool = False,
    dilation: int = 1,
) -> nn.Sequential:
    """Conv, BatchNorm, ReLU, with an optional MaxPool / Upsample.

    The 2019 course models resample last (Conv BN ReLU Pool); the 2022 ones resample right
    after the convolution (Conv Pool BN ReLU).
    """
    layers: list[nn.Module] = [same_conv(in_channels, out_channels, kernel, dilation)]
    if resample is not None and resample_first:
        layers.append(resample)
    layers += [nn.BatchNorm2d(out_channels), nn.ReLU()]
    if resample is not None and not resample_first:
        layers.append(resample)
    return nn.Sequential(*layers)


def climb_decoders(
    decoders: nn.ModuleList,
    features: torch.Tensor,
    skips: list[torch.Tensor],
    activations: dict[str, torch.Tensor],
    guide: Callable[[tuple[int, int]], torch.Tensor] | None = None,
) -> torch.Tensor:
    """A UNet's way back up: at each level, upsample (nearest) to the skip's size, join the
    skip by concatenation and run that level's decoder; `skips` run from fine to coarse,
    and every level's result is recorded as the next `outN` activation. `guide`, given a
    level's size, returns more channels every level joins too (colour hints)."""
    for decoder, skip in zip(decoders, reversed(skips), strict=True):
        features = F.interpolate(features, size=skip.shape[-2:], mode="nearest")
        parts = (skip, features) if guide is None else (skip, features, guide(skip.shape[-2:]))
        features = decoder(torch.cat(parts, dim=1))
        activations[f"out{len(activations) + 1}"] = features
    return features


def downsample() -> nn.MaxPool2d:
    return nn.MaxPool2d(2)


def upsample() -> nn.Upsample:
    # Nearest neighbour, the course's nn.Upsample(scale_factor=2) default.
    return nn.Upsample(scale_factor=2, mode="nearest")

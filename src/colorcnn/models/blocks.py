"""Small building blocks, so that the architectures read like the course's layer lists."""

from __future__ import annotations

from torch import nn


def same_conv(in_channels: int, out_channels: int, kernel: int, dilation: int = 1) -> nn.Conv2d:
    """A stride-1 convolution that keeps the image size for odd and even kernels alike.

    For odd kernels this is the course's `padding = kernel // 2` (times the dilation); for
    even kernels the extra row and column of padding go to the bottom and right.
    """
    return nn.Conv2d(in_channels, out_channels, kernel, padding="same", dilation=dilation)


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


def downsample() -> nn.MaxPool2d:
    return nn.MaxPool2d(2)


def upsample() -> nn.Upsample:
    # Nearest neighbour, the course's nn.Upsample(scale_factor=2) default.
    return nn.Upsample(scale_factor=2, mode="nearest")

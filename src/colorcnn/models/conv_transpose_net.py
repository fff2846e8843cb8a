"""The course's 2022 ConvTransposeNet: learned down- and upsampling with strided convolutions."""

from __future__ import annotations

import torch
from torch import nn

from colorcnn.models.base import ColourNet
from colorcnn.models.blocks import same_conv
from colorcnn.models.registry import register_model


def _strided_padding(kernel: int) -> tuple[int, int]:
    """Padding and output padding that make stride-2 layers exactly halve and double the size.

    For the course's kernel 3 this is padding 1 and output padding 1.
    """
    padding = (kernel - 1) // 2
    output_padding = 2 + 2 * padding - kernel
    return padding, output_padding


class ConvTransposeNet(ColourNet):
    """Conv stride 2 BN ReLU x2, ConvTranspose stride 2 BN ReLU x2, Conv (CSC413 2022)."""

    def __init__(
        self,
        kernel: int = 3,
        num_filters: int = 32,
        in_channels: int = 1,
        out_channels: int = 24,
        colour_width: int | None = None,
    ):
        super().__init__(kernel, num_filters, in_channels, out_channels, colour_width)
        nf = num_filters
        padding, output_padding = _strided_padding(kernel)

        def down(cin: int, cout: int) -> nn.Sequential:
            conv = nn.Conv2d(cin, cout, kernel, stride=2, padding=padding)
            return nn.Sequential(conv, nn.BatchNorm2d(cout), nn.ReLU())

        def up(cin: int, cout: int) -> nn.Sequential:
            conv = nn.ConvTranspose2d(
                cin, cout, kernel, stride=2, padding=padding, output_padding=output_padding
            )
            return nn.Sequential(conv, nn.BatchNorm2d(cout), nn.ReLU())

        self.layer1 = down(in_channels, nf)
        self.layer2 = down(nf, 2 * nf)
        self.layer3 = up(2 * nf, nf)
        self.layer4 = up(nf, self.colour_width)
        self.layer5 = same_conv(self.colour_width, self.colour_width, kernel)

    def forward_activations(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out1 = self.layer1(x)  # (N, NF, H/2, W/2)
        out2 = self.layer2(out1)  # (N, 2NF, H/4, W/4)
        out3 = self.layer3(out2)  # (N, NF, H/2, W/2)
        out4 = self.layer4(out3)  # (N, C, H, W)
        last = self.layer5(out4)  # (N, C, H, W)
        return self._finish({"out1": out1, "out2": out2, "out3": out3, "out4": out4}, last)


@register_model
def conv_transpose_net(**kwargs) -> ConvTransposeNet:
    """ConvTransposeNet (CSC413 2022): strided convolutions down, transposed convolutions up."""
    return ConvTransposeNet(**kwargs)

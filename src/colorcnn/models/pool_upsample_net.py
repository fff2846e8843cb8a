"""The course's 2022 PoolUpsampleNet: resample right after each convolution, no middle layer."""

from __future__ import annotations

import torch

from colorcnn.models.base import ColourNet
from colorcnn.models.blocks import conv_block, downsample, same_conv, upsample
from colorcnn.models.registry import register_model


class PoolUpsampleNet(ColourNet):
    """Conv Pool BN ReLU x2, Conv Upsample BN ReLU x2, Conv (CSC413 2022)."""

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
        self.layer1 = conv_block(
            in_channels, nf, kernel, resample=downsample(), resample_first=True
        )
        self.layer2 = conv_block(nf, 2 * nf, kernel, resample=downsample(), resample_first=True)
        self.layer3 = conv_block(2 * nf, nf, kernel, resample=upsample(), resample_first=True)
        nc = self.colour_width
        self.layer4 = conv_block(nf, nc, kernel, resample=upsample(), resample_first=True)
        self.layer5 = same_conv(nc, nc, kernel)

    def forward_activations(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out1 = self.layer1(x)  # (N, NF, H/2, W/2)
        out2 = self.layer2(out1)  # (N, 2NF, H/4, W/4)
        out3 = self.layer3(out2)  # (N, NF, H/2, W/2)
        out4 = self.layer4(out3)  # (N, C, H, W)
        last = self.layer5(out4)  # (N, C, H, W)
        return self._finish({"out1": out1, "out2": out2, "out3": out3, "out4": out4}, last)


@register_model
def pool_upsample_net(**kwargs) -> PoolUpsampleNet:
    """PoolUpsampleNet (CSC413 2022): Conv-Pool-BN-ReLU encoder, Conv-Upsample-BN-ReLU decoder."""
    return PoolUpsampleNet(**kwargs)

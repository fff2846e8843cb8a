"""The course's 2019 UNet: the CNN trunk with skip connections by concatenation."""

from __future__ import annotations

import torch

from colorcnn.models.base import ColourNet
from colorcnn.models.blocks import concat_conv, conv_block, downsample, upsample
from colorcnn.models.registry import register_model


class UNet(ColourNet):
    """CNN trunk; cat(out2, out3), cat(out1, out4) and cat(x, out5) feed the upward path.

    `middle_dilation` > 1 makes the middle (2NF -> 2NF) layer a dilated convolution, which
    widens the receptive field at no extra cost (the DilatedUNet).
    """

    def __init__(
        self,
        kernel: int = 3,
        num_filters: int = 32,
        in_channels: int = 1,
        out_channels: int = 24,
        middle_dilation: int = 1,
        colour_width: int | None = None,
    ):
        super().__init__(kernel, num_filters, in_channels, out_channels, colour_width)
        nf = num_filters
        self.middle_dilation = middle_dilation
        self.downconv1 = conv_block(in_channels, nf, kernel, resample=downsample())
        self.downconv2 = conv_block(nf, 2 * nf, kernel, resample=downsample())
        self.rfconv = conv_block(2 * nf, 2 * nf, kernel, dilation=middle_dilation)
        self.upconv1 = conv_block(4 * nf, nf, kernel, resample=upsample())
        nc = self.colour_width
        self.upconv2 = conv_block(2 * nf, nc, kernel, resample=upsample())
        self.finalconv = concat_conv(nc + in_channels, nc, kernel)

    @property
    def hyperparameters(self) -> dict[str, int]:
        return {**super().hyperparameters, "middle_dilation": self.middle_dilation}

    def forward_activations(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out1 = self.downconv1(x)  # (N, NF, H/2, W/2)
        out2 = self.downconv2(out1)  # (N, 2NF, H/4, W/4)
        out3 = self.rfconv(out2)  # (N, 2NF, H/4, W/4)
        out4 = self.upconv1(torch.cat((out2, out3), dim=1))  # (N, NF, H/2, W/2)
        out5 = self.upconv2(torch.cat((out1, out4), dim=1))  # (N, C, H, W)
        last = self.finalconv(x, out5)  # of cat(x, out5): (N, C, H, W)
        activations = {"out1": out1, "out2": out2, "out3": out3, "out4": out4, "out5": out5}
        return self._finish(activations, last)


@register_model
def unet(**kwargs) -> UNet:
    """UNet (CSC421 2019): the CNN with three concatenating skip connections, NF=32."""
    return UNet(**kwargs)


@register_model
def unet_small(**kwargs) -> UNet:
    """UNet with half the filters (NF=16): about a quarter of the weights and multiply-adds."""
    return UNet(**{"num_filters": 16, **kwargs})


@register_model
def unet_large(**kwargs) -> UNet:
    """UNet with twice the filters (NF=64): about four times the weights and multiply-adds."""
    return UNet(**{"num_filters": 64, **kwargs})


@register_model
def dilated_unet(**kwargs) -> UNet:
    """DilatedUNet (2018): the UNet whose middle layer is a dilation-2 convolution."""
    return UNet(**{"middle_dilation": 2, **kwargs})

"""The course's 2019 CNN and its RGB-regression twin: pool twice, upsample twice, no skips."""

from __future__ import annotations

import torch

from colorcnn.models.base import ColourNet
from colorcnn.models.blocks import conv_block, downsample, same_conv, upsample
from colorcnn.models.registry import register_model


class CNN(ColourNet):
    """Conv BN ReLU Pool x2, Conv BN ReLU, Conv BN ReLU Upsample x2, Conv (CSC421 2019).

    The second upsampling block outputs `out_channels` (the colour classes), so the final
    convolution maps colours to colours, exactly as in the course's layer list.
    """

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
        self.downconv1 = conv_block(in_channels, nf, kernel, resample=downsample())
        self.downconv2 = conv_block(nf, 2 * nf, kernel, resample=downsample())
        self.rfconv = conv_block(2 * nf, 2 * nf, kernel)
        self.upconv1 = conv_block(2 * nf, nf, kernel, resample=upsample())
        nc = self.colour_width
        self.upconv2 = conv_block(nf, nc, kernel, resample=upsample())
        self.finalconv = same_conv(nc, nc, kernel)

    def forward_activations(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out1 = self.downconv1(x)  # (N, NF, H/2, W/2)
        out2 = self.downconv2(out1)  # (N, 2NF, H/4, W/4)
        out3 = self.rfconv(out2)  # (N, 2NF, H/4, W/4)
        out4 = self.upconv1(out3)  # (N, NF, H/2, W/2)
        out5 = self.upconv2(out4)  # (N, C, H, W)
        last = self.finalconv(out5)  # (N, C, H, W)
        activations = {"out1": out1, "out2": out2, "out3": out3, "out4": out4, "out5": out5}
        return self._finish(activations, last)


class RegressionCNN(CNN):
    """The CNN trunk predicting RGB directly (3 outputs), trained with mean squared error."""

    objective = "regression"

    def __init__(
        self,
        kernel: int = 3,
        num_filters: int = 32,
        in_channels: int = 1,
        out_channels: int = 3,
        colour_width: int | None = None,
    ):
        super().__init__(kernel, num_filters, in_channels, out_channels, colour_width)


@register_model
def cnn(**kwargs) -> CNN:
    """CNN (CSC421 2019): pool/upsample encoder-decoder over 24 colour classes."""
    return CNN(**kwargs)


@register_model
def regression_cnn(**kwargs) -> RegressionCNN:
    """RegressionCNN: the CNN trunk regressing RGB with MSE (the course's first baseline)."""
    return RegressionCNN(**kwargs)

"""A super-resolution network that works at low resolution and upscales at its very end
(ESPCN, Shi et al. 2016; FSRCNN, Dong et al. 2016): every convolution runs on the small
picture, and the last one predicts `scale * scale` values per pixel that a sub-pixel
shuffle (nn.PixelShuffle) lays out as a picture `scale` times larger. Upscaling 250 px to
1000 px, its convolutions see 62500 pixels instead of a million.
"""

from __future__ import annotations

import torch
from torch import nn

from colorcnn.models.base import ColourNet
from colorcnn.models.blocks import same_conv
from colorcnn.models.registry import register_model

# The last convolution starts with weights this much smaller than torch's default, so that
# an untrained network adds almost nothing to the picture it refines (bicubic, in
# formulations.superres): training starts from the baseline, not from noise over it.
_OUTPUT_INIT_GAIN = 0.1


class SubPixelNet(ColourNet):
    """Conv ReLU, `depth` x (Conv ReLU) with a skip over them, Conv to scale^2 * C, shuffle.

    In (N, in_channels, h, w), out (N, out_channels, h * scale, w * scale). No batch norm:
    a super-resolution network predicts small residuals whose scale batch statistics would
    only blur (EDSR, Lim et al. 2017, dropped it for this reason).
    """

    objective = "regression"

    def __init__(
        self,
        kernel: int = 3,
        num_filters: int = 32,
        in_channels: int = 1,
        out_channels: int = 1,
        colour_width: int | None = None,
        depth: int = 6,
        scale: int = 4,
    ):
        super().__init__(kernel, num_filters, in_channels, out_channels, colour_width)
        if depth < 1 or scale < 1:
            raise ValueError(f"depth and scale must be positive, got {depth} and {scale}")
        if self.colour_width != out_channels:
            raise ValueError(
                f"SubPixelNet has no narrower last layers; expected colour_width "
                f"{out_channels} (the output's), got {colour_width}"
            )
        nf = num_filters
        self.depth = depth
        self.scale = scale
        self.entry = nn.Sequential(same_conv(in_channels, nf, kernel), nn.ReLU())
        self.body = nn.ModuleList(
            nn.Sequential(same_conv(nf, nf, kernel), nn.ReLU()) for _ in range(depth)
        )
        self.to_subpixels = same_conv(nf, out_channels * scale * scale, kernel)
        with torch.no_grad():
            self.to_subpixels.weight.mul_(_OUTPUT_INIT_GAIN)
            self.to_subpixels.bias.zero_()
        self.shuffle = nn.PixelShuffle(scale)

    @property
    def size_multiple(self) -> int:
        """Any side works: nothing pools."""
        return 1

    @property
    def output_scale(self) -> int:
        return self.scale

    @property
    def hyperparameters(self) -> dict[str, int]:
        return {**super().hyperparameters, "depth": self.depth, "scale": self.scale}

    def forward_activations(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.entry(x)  # (N, NF, h, w)
        activations = {"out1": features}
        refined = features
        for layer in self.body:
            refined = layer(refined)  # (N, NF, h, w)
            activations[f"out{len(activations) + 1}"] = refined
        # The skip lets the body learn only what the first layer's features lack.
        subpixels = self.to_subpixels(refined + features)  # (N, C * scale^2, h, w)
        activations[f"out{len(activations) + 1}"] = subpixels
        activations["output"] = self.shuffle(subpixels)  # (N, C, h * scale, w * scale)
        return activations


@register_model
def subpixel_net(**kwargs) -> SubPixelNet:
    """SubPixelNet: 8 convolutions of NF=32 at low resolution, sub-pixel upscaling (x4)."""
    return SubPixelNet(**kwargs)


@register_model
def subpixel_net_small(**kwargs) -> SubPixelNet:
    """SubPixelNet with 4 body layers of NF=24: about two fifths of the multiply-adds."""
    return SubPixelNet(**{"num_filters": 24, "depth": 4, **kwargs})


@register_model
def subpixel_net_large(**kwargs) -> SubPixelNet:
    """SubPixelNet with 8 body layers of NF=48: about three times the multiply-adds."""
    return SubPixelNet(**{"num_filters": 48, "depth": 8, **kwargs})

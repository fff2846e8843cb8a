"""What a super-resolution network sees and predicts.

Both protocols start from the full-resolution colour image average-pooled by the scale
(32 px -> 8 px at x4), so low- and high-resolution pixels line up exactly:

- `superres-palette` (the course's): the pooled image upsampled back by nearest neighbour
  is the input (3 channels); the target is the 24-colour class of every full-resolution
  pixel. Its baseline is the course's: the quantized truth, pooled and upsampled bilinearly.
- `superres-rgb` (real upscaling): the input is the pooled image upsampled bicubically; the
  network predicts the residual that turns it into the full-resolution image, trained with
  mean squared error. Its baseline is the bicubic input itself.

Neither is given the true lightness: recovering it is the task.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from colorcnn.color.palette import nearest_colour, palette_image
from colorcnn.color.spaces import unit_rgb
from colorcnn.errors import ColorcnnError
from colorcnn.formulations.base import (
    Formulation,
    PaletteClasses,
    best_class,
    register_formulation,
)

SCALES = (2, 4)
COURSE_SCALE = 4


def check_scale(scale: int) -> int:
    if scale not in SCALES:
        raise ColorcnnError(f"scale must be one of {', '.join(map(str, SCALES))}, got {scale}")
    return scale


def pooled(rgb: torch.Tensor, scale: int) -> torch.Tensor:
    """The low-resolution image (N, 3, H/scale, W/scale): each pixel the mean of its block."""
    height, width = rgb.shape[-2:]
    if height % scale or width % scale:
        raise ColorcnnError(
            f"images of {height}x{width} px cannot be pooled by {scale}; expected sides that "
            f"are multiples of {scale}"
        )
    return F.avg_pool2d(rgb, scale)


def bicubic_up(low: torch.Tensor, scale: int) -> torch.Tensor:
    return F.interpolate(low, scale_factor=scale, mode="bicubic", align_corners=False)


class _SuperResolution:
    """What both protocols share: a colour input, a scale, and the scale in checkpoints."""

    task = "superres"

    def __init__(self, palette: torch.Tensor, scale: int = COURSE_SCALE):
        super().__init__(palette)
        self.scale = check_scale(scale)

    @classmethod
    def from_description(cls, palette, described, train_rgb=None):
        return cls(palette, described.get("scale") or COURSE_SCALE)

    @property
    def in_channels(self) -> int:
        return 3

    def describe(self) -> dict:
        return {"name": self.name, "scale": self.scale}

    def decode_for_scoring(self, outputs, inputs, lightness, own_picture=True):
        """The upscaled picture itself: super-resolution keeps no lightness apart."""
        picture = self.predict_rgb(outputs, inputs)
        return self.colour_indices(outputs, inputs, picture), picture, None


@register_formulation
class SuperResPalette(_SuperResolution, PaletteClasses):
    """The course's super-resolution: nearest-upsampled low resolution in, classes out."""

    name = "superres-palette"

    def inputs(self, rgb: torch.Tensor) -> torch.Tensor:
        return F.interpolate(pooled(rgb, self.scale), scale_factor=self.scale, mode="nearest")

    def predict_rgb(self, outputs, inputs, lightness=None):
        return unit_rgb(palette_image(best_class(outputs), self.palette))

    def picture_rows(self, outputs, inputs, truth_rgb):
        return {
            f"input (1/{self.scale}\nresolution)": unit_rgb(inputs),
            "ground truth\n(palette)": self.quantized(truth_rgb),
            "bilinear\nbaseline": self.baseline_rgb(truth_rgb),
            "prediction": self.predict_rgb(outputs, inputs),
        }

    def baseline_rgb(self, rgb: torch.Tensor) -> torch.Tensor:
        """The course's bilinear baseline: quantized truth, pooled, upsampled bilinearly."""
        quantized = palette_image(nearest_colour(rgb, self.palette)[:, 0], self.palette)
        low = pooled(quantized, self.scale)
        return unit_rgb(
            F.interpolate(low, scale_factor=self.scale, mode="bilinear", align_corners=False)
        )


@register_formulation
class SuperResResidual(_SuperResolution, Formulation):
    """Bicubic upsampling in, the missing detail (truth minus bicubic) out, MSE."""

    name = "superres-rgb"

    @property
    def out_channels(self) -> int:
        return 3

    def inputs(self, rgb: torch.Tensor) -> torch.Tensor:
        return bicubic_up(pooled(rgb, self.scale), self.scale)

    def targets(self, rgb: torch.Tensor) -> torch.Tensor:
        return rgb - self.inputs(rgb)  # the residual, on the course's scale

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(outputs, targets)

    def predict_rgb(self, outputs, inputs, lightness=None):
        return unit_rgb((inputs + outputs).float())

    def picture_rows(self, outputs, inputs, truth_rgb):
        return {  # the input is the bicubic baseline itself
            f"input: bicubic\nfrom 1/{self.scale}": unit_rgb(inputs),
            "ground truth": unit_rgb(truth_rgb),
            "prediction": self.predict_rgb(outputs, inputs),
        }

    def baseline_rgb(self, rgb: torch.Tensor) -> torch.Tensor:
        return unit_rgb(self.inputs(rgb))

"""What a super-resolution network sees and predicts.

The course's two protocols start from the full-resolution colour image average-pooled by
the scale (32 px -> 8 px at x4), so low- and high-resolution pixels line up exactly:

- `superres-palette` (the course's): the pooled image upsampled back by nearest neighbour
  is the input (3 channels); the target is the 24-colour class of every full-resolution
  pixel. Its baseline is the course's: the quantized truth, pooled and upsampled bilinearly.
- `superres-rgb` (real upscaling): the input is the pooled image upsampled bicubically; the
  network predicts the residual that turns it into the full-resolution image, trained with
  mean squared error. Its baseline is the bicubic input itself.

The shipped upscalers learn a third:

- `superres-y` (the shipped upscalers'): the photo is shrunk by bicubic interpolation
  with antialiasing (`shrink`, the degradation users meet: a picture made smaller by any
  image editor) and stored as 8-bit RGB; the network sees the luminance Y of that small
  picture alone, at its own size, and predicts the residual over its bicubic upsampling at
  full size (networks that upscale: `ColourNet.output_scale`). Chroma is upscaled
  bicubically at use (superres.upscale), which keeps grey pictures grey and matches the
  field's Y-channel scoring. Its baseline is the bicubic Y.

None is given the true lightness: recovering it is the task.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from kornia.color import rgb_to_ycbcr

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


def shrink(rgb: torch.Tensor, scale: int) -> torch.Tensor:
    """The degradation the shipped upscalers learn to undo: RGB in [0, 1] (N, 3, H, W)
    made `scale` times smaller by bicubic interpolation with antialiasing (torch's, as
    image editors shrink pictures: each small pixel weighs a neighbourhood `scale` times
    wider than bicubic's own), then stored as 8-bit values like any saved picture."""
    height, width = rgb.shape[-2:]
    if height % scale or width % scale:
        raise ColorcnnError(
            f"images of {height}x{width} px cannot be shrunk by {scale}; expected sides "
            f"that are multiples of {scale}"
        )
    small = F.interpolate(
        rgb, size=(height // scale, width // scale), mode="bicubic", antialias=True,
        align_corners=False,
    )  # fmt: skip
    return (small.clamp(0, 1) * 255).round() / 255


def luma(rgb: torch.Tensor) -> torch.Tensor:
    """The luminance Y (*, 1, H, W) of RGB in [0, 1]: kornia's full-range YCbCr (JPEG's
    0.299 R + 0.587 G + 0.114 B), so grey pixels keep their value."""
    return rgb_to_ycbcr(rgb)[..., :1, :, :]


def grey_picture(y: torch.Tensor) -> torch.Tensor:
    """A luminance (N, 1, H, W) as a grey RGB picture (N, 3, H, W) in [0, 1]."""
    return y.clamp(0, 1).expand(-1, 3, -1, -1)


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


@register_formulation
class SuperResLuminance(_SuperResolution, Formulation):
    """The small picture's Y in, the detail bicubic misses in full-size Y out, MSE.

    The network upscales itself (`network_upscales`): its input is the small Y
    (N, 1, H/scale, W/scale), its output the residual (N, 1, H, W). Scored on Y: a grey
    picture of the upscaled luminance against the true luminance."""

    name = "superres-y"
    network_upscales = True

    @property
    def in_channels(self) -> int:
        return 1

    @property
    def out_channels(self) -> int:
        return 1

    def inputs(self, rgb: torch.Tensor) -> torch.Tensor:
        return luma(shrink(unit_rgb(rgb), self.scale))  # (N, 1, H/scale, W/scale)

    def upscaled_baseline(self, inputs: torch.Tensor) -> torch.Tensor:
        """The bicubic Y (N, 1, H, W) the network's residual adds to."""
        return bicubic_up(inputs, self.scale)

    def targets(self, rgb: torch.Tensor) -> torch.Tensor:
        truth = luma(unit_rgb(rgb))
        return truth - self.upscaled_baseline(self.inputs(rgb))  # (N, 1, H, W)

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(outputs, targets)

    def predict_luma(self, outputs: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        return (self.upscaled_baseline(inputs) + outputs.float()).clamp(0, 1)

    def predict_rgb(self, outputs, inputs, lightness=None):
        return grey_picture(self.predict_luma(outputs, inputs))

    def scored_truth(self, truth: torch.Tensor) -> torch.Tensor:
        """What predictions are scored against: the true luminance, as a grey picture."""
        return grey_picture(luma(truth))

    def picture_rows(self, outputs, inputs, truth_rgb):
        small = F.interpolate(inputs, scale_factor=self.scale, mode="nearest")
        return {  # luminance only, as grey pictures
            f"input (1/{self.scale}\nresolution)": grey_picture(small),
            "bicubic": grey_picture(self.upscaled_baseline(inputs)),
            "prediction": self.predict_rgb(outputs, inputs),
            "ground truth": self.scored_truth(unit_rgb(truth_rgb)),
        }

    def baseline_rgb(self, rgb: torch.Tensor) -> torch.Tensor:
        return grey_picture(self.upscaled_baseline(self.inputs(rgb)))

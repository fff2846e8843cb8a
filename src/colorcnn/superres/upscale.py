"""Upscale images of any size with a trained superres-rgb network: bicubic first, then the
network adds the detail bicubic misses, tile by tile so that memory stays bounded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from colorcnn.color.spaces import course_rgb
from colorcnn.errors import ColorcnnError
from colorcnn.formulations.superres import SuperResResidual, bicubic_up
from colorcnn.inference.images import LoadedImage, load_any, to_pil, to_uint8
from colorcnn.trained import load_model

# Output tiles (pixels per side) and the context read around them: wider than the course
# networks' receptive field (about 34 px), so tiles join without seams.
TILE = 256
MARGIN = 32


# Upscaled pictures above this size are refused: a 100-megapixel result already takes
# minutes on a laptop's CPU and about 0.5 GB for the picture alone.
MAX_OUTPUT_PIXELS = 100_000_000
# Low-resolution pixels read beyond a window: bicubic weights reach 2 pixels either side.
_BICUBIC_REACH = 2


def _bicubic_window(low: torch.Tensor, scale: int, y0: int, y1: int, x0: int, x1: int):
    """Rows y0:y1 and columns x0:x1 of bicubic_up(low, scale), computed from the part of
    `low` they depend on, so that no full-size copy of the image is ever made. The values
    are those of the whole image's upsampling: each output pixel reads the same 4x4 source
    pixels with the same weights, and torch clamps at the image's own borders alike."""
    height, width = low.shape[-2:]
    ly0, lx0 = max(y0 // scale - _BICUBIC_REACH, 0), max(x0 // scale - _BICUBIC_REACH, 0)
    ly1 = min(-(-y1 // scale) + _BICUBIC_REACH, height)
    lx1 = min(-(-x1 // scale) + _BICUBIC_REACH, width)
    up = bicubic_up(low[..., ly0:ly1, lx0:lx1], scale)
    top, left = y0 - ly0 * scale, x0 - lx0 * scale
    return up[..., top : top + (y1 - y0), left : left + (x1 - x0)]


@dataclass
class Upscaler:
    model: torch.nn.Module
    formulation: SuperResResidual
    name: str

    @property
    def scale(self) -> int:
        return self.formulation.scale

    @classmethod
    def load(cls, checkpoint: str | Path) -> Upscaler:
        """A run folder or checkpoint of a model trained with task superres and target
        superres-rgb."""
        trained = load_model(checkpoint)
        formulation = trained.formulation
        if not isinstance(formulation, SuperResResidual) or trained.runtime != "torch":
            raise ColorcnnError(
                f"{checkpoint} predicts {formulation.name} ({trained.runtime}); upscaling needs "
                "a PyTorch model trained for task superres with target superres-rgb"
            )
        name = f"{trained.architecture} (superres-rgb x{formulation.scale})"
        return cls(trained.network, formulation, name)

    @torch.inference_mode()
    def upscale_loaded(self, image: LoadedImage, show_progress: bool = False) -> Image.Image:
        rgb = torch.from_numpy(np.ascontiguousarray(image.rgb_rows(slice(None))))
        low = course_rgb(rgb.permute(2, 0, 1)[None])  # (1, 3, h, w)
        scale = self.scale
        height, width = low.shape[-2] * scale, low.shape[-1] * scale
        if height * width > MAX_OUTPUT_PIXELS:
            raise ColorcnnError(
                f"upscaled x{scale} it would be {width}x{height} px; expected at most "
                f"{MAX_OUTPUT_PIXELS:,} pixels"
            )
        multiple = self.model.size_multiple
        output = np.empty((height, width, 3), dtype=np.uint8)
        tiles = [(top, left) for top in range(0, height, TILE) for left in range(0, width, TILE)]
        for top, left in tqdm(
            tiles, desc="Tiles", unit="tile", leave=False, disable=not show_progress
        ):
            bottom, right = min(top + TILE, height), min(left + TILE, width)
            y0, x0 = max(top - MARGIN, 0), max(left - MARGIN, 0)
            y1, x1 = min(bottom + MARGIN, height), min(right + MARGIN, width)
            window = _bicubic_window(low, scale, y0, y1, x0, x1)  # the network's input
            pad_h, pad_w = -window.shape[-2] % multiple, -window.shape[-1] % multiple
            padded = F.pad(window, (0, pad_w, 0, pad_h), mode="replicate")
            predicted = self.formulation.predict_rgb(self.model(padded), padded)
            tile = predicted[0, :, top - y0 : bottom - y0, left - x0 : right - x0]
            output[top:bottom, left:right] = to_uint8(tile)
        alpha = None
        if image.alpha is not None:
            alpha_image = Image.fromarray(image.alpha).resize((width, height), Image.BICUBIC)
            alpha = np.asarray(alpha_image)
        return to_pil(output, alpha)

    def upscale(self, image: str | Path | Image.Image | np.ndarray) -> Image.Image:
        """Upscale a path, a PIL image or an array by the model's scale; returns PIL."""
        return self.upscale_loaded(load_any(image))

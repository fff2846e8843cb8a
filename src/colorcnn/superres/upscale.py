"""Upscale images of any size with a trained super-resolution network, tile by tile so
that memory stays bounded.

- superres-y models (the shipped `upscale-x2` and `upscale-x4`) run at the small picture's
  own size on its luminance Y and add their detail to bicubic Y; the chroma (Cb, Cr) is
  upscaled bicubically, and a grey picture stays exactly grey.
- superres-rgb models run at full size on the bicubic picture and add their detail to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from kornia.color import rgb_to_ycbcr, ycbcr_to_rgb
from PIL import Image
from tqdm.auto import tqdm

from colorcnn.color.spaces import course_rgb
from colorcnn.errors import ColorcnnError
from colorcnn.formulations.superres import (
    SuperResLuminance,
    SuperResResidual,
    bicubic_up,
    check_scale,
)
from colorcnn.inference.images import LoadedImage, load_any, to_pil, to_uint8
from colorcnn.runtime import check_precision, resolve_precision, run_network
from colorcnn.trained import load_model
from colorcnn.weights import shipped_path

# Output tiles (pixels per side) and the context read around them: wider than the course
# networks' receptive field (about 34 px), so tiles join without seams.
TILE = 256
MARGIN = 32
# superres-y networks run on the small picture: its tiles, in small pixels per side (512
# px of output at x4). Their margin is the network's own reach (`reach_of`).
LOW_TILE = 128

# The shipped upscalers by scale: `colorcnn upscale` uses them when given no model.
SHIPPED_UPSCALERS = {2: "upscale-x2", 4: "upscale-x4"}
DEFAULT_SCALE = 4


def shipped_upscaler(scale: int) -> str:
    """The name of the shipped model that upscales by `scale`."""
    name = SHIPPED_UPSCALERS[check_scale(scale)]
    if shipped_path(name) is None:
        raise ColorcnnError(f"the shipped {name} weights are missing from this installation")
    return name


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


def reach_of(network: torch.nn.Module) -> int:
    """Small pixels an output of a low-resolution network reads on either side: each
    stride-1 convolution reaches kernel // 2 pixels further (an even kernel's extra row
    lies on one side only)."""
    reach = 0
    for layer in network.modules():
        if isinstance(layer, torch.nn.Conv2d):
            reach += layer.dilation[0] * (layer.kernel_size[0] // 2)
    return reach


@dataclass
class Upscaler:
    model: torch.nn.Module
    formulation: SuperResResidual | SuperResLuminance
    name: str
    low_tile: int = LOW_TILE  # superres-y: small pixels per tile side
    precision: str = "fp32"  # the network's (resolved: fp32, bf16 or fp16)

    @property
    def scale(self) -> int:
        return self.formulation.scale

    @classmethod
    def load(
        cls,
        checkpoint: str | Path | None = None,
        scale: int | None = None,
        precision: str = "auto",
    ) -> Upscaler:
        """A shipped name, run folder or checkpoint of a model trained with task superres
        and target superres-y or superres-rgb; without one, the shipped model for `scale`
        (4 unless given). A `scale` that is not the model's is refused. `precision` is the
        network's: auto (bf16 where the hardware computes it natively, else fp32), fp32,
        bf16, or fp16 on CUDA."""
        check_precision(precision)
        if checkpoint is None:
            checkpoint = shipped_upscaler(DEFAULT_SCALE if scale is None else scale)
        trained = load_model(checkpoint)
        formulation = trained.formulation
        upscaling = (SuperResResidual, SuperResLuminance)
        if not isinstance(formulation, upscaling) or trained.runtime != "torch":
            raise ColorcnnError(
                f"{checkpoint} predicts {formulation.name} ({trained.runtime}); upscaling needs "
                "a PyTorch model trained for task superres with target superres-y or superres-rgb"
            )
        if scale is not None and scale != formulation.scale:
            raise ColorcnnError(
                f"scale {scale} does not fit {checkpoint}, which upscales by {formulation.scale}"
            )
        name = f"{trained.architecture} ({formulation.name} x{formulation.scale})"
        precision = resolve_precision(precision, trained.device)
        return cls(trained.network, formulation, name, precision=precision)

    @torch.inference_mode()
    def upscale_loaded(self, image: LoadedImage, show_progress: bool = False) -> Image.Image:
        scale = self.scale
        height, width = image.height * scale, image.width * scale
        if height * width > MAX_OUTPUT_PIXELS:
            raise ColorcnnError(
                f"upscaled x{scale} it would be {width}x{height} px; expected at most "
                f"{MAX_OUTPUT_PIXELS:,} pixels"
            )
        if isinstance(self.formulation, SuperResLuminance):
            output = self._upscale_luminance(image, show_progress)
        else:
            output = self._upscale_rgb(image, show_progress)
        alpha = None
        if image.alpha is not None:
            alpha_image = Image.fromarray(image.alpha).resize((width, height), Image.BICUBIC)
            alpha = np.asarray(alpha_image)
        return to_pil(output, alpha)

    def _upscale_luminance(self, image: LoadedImage, show_progress: bool) -> np.ndarray:
        """Tiles of the small picture, each read with the network's reach around it, so
        that they join exactly as the whole picture at once would come out."""
        scale, tile = self.scale, self.low_tile
        low_height, low_width = image.height, image.width
        pixels = torch.from_numpy(np.ascontiguousarray(image.pixels)).permute(2, 0, 1)[None]
        grey = pixels.shape[1] == 1 or bool(
            torch.equal(pixels[:, 0], pixels[:, 1]) and torch.equal(pixels[:, 1], pixels[:, 2])
        )
        # Grey stays grey exactly: its Y is its value, and no chroma is made up.
        ycbcr = pixels[:, :1] if grey else rgb_to_ycbcr(pixels)  # (1, 1 or 3, h, w)
        luminance = ycbcr[:, :1]
        reach = reach_of(self.model)
        output = np.empty((low_height * scale, low_width * scale, 3), dtype=np.uint8)
        tiles = [
            (top, left) for top in range(0, low_height, tile) for left in range(0, low_width, tile)
        ]
        for top, left in tqdm(
            tiles, desc="Tiles", unit="tile", leave=False, disable=not show_progress
        ):
            bottom, right = min(top + tile, low_height), min(left + tile, low_width)
            y0, x0 = max(top - reach, 0), max(left - reach, 0)
            y1, x1 = min(bottom + reach, low_height), min(right + reach, low_width)
            context = luminance[..., y0:y1, x0:x1]  # the tile and the network's reach
            residual = run_network(self.model, context, self.precision)  # (1, 1, s(y1-y0), ..)
            residual = residual[
                ..., (top - y0) * scale : (bottom - y0) * scale,
                (left - x0) * scale : (right - x0) * scale,
            ]  # fmt: skip
            window = (top * scale, bottom * scale, left * scale, right * scale)
            upscaled = _bicubic_window(ycbcr, scale, *window)  # (1, 1 or 3, S, S)
            y = (upscaled[:, :1] + residual).clamp(0, 1)
            if grey:
                rgb = y.expand(-1, 3, -1, -1)
            else:
                rgb = ycbcr_to_rgb(torch.cat((y, upscaled[:, 1:]), dim=1)).clamp(0, 1)
            output[window[0] : window[1], window[2] : window[3]] = to_uint8(rgb[0])
        return output

    def _upscale_rgb(self, image: LoadedImage, show_progress: bool) -> np.ndarray:
        rgb = torch.from_numpy(np.ascontiguousarray(image.rgb_rows(slice(None))))
        low = course_rgb(rgb.permute(2, 0, 1)[None])  # (1, 3, h, w)
        scale = self.scale
        height, width = low.shape[-2] * scale, low.shape[-1] * scale
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
            outputs = run_network(self.model, padded, self.precision)
            predicted = self.formulation.predict_rgb(outputs, padded)
            tile = predicted[0, :, top - y0 : bottom - y0, left - x0 : right - x0]
            output[top:bottom, left:right] = to_uint8(tile)
        return output

    def upscale(self, image: str | Path | Image.Image | np.ndarray) -> Image.Image:
        """Upscale a path, a PIL image or an array by the model's scale; returns PIL."""
        return self.upscale_loaded(load_any(image))

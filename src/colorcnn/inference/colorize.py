"""Colourize images of any size: predict chroma at a working resolution, upsample it, and
join it with the input's own full-resolution lightness, so that the output keeps the
input's size, detail and brightness."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from colorcnn.color.hints import Hint, render_hints
from colorcnn.color.spaces import (
    course_rgb,
    grey_lightness,
    lab_to_rgb_uint8,
    rgb_lightness,
)
from colorcnn.errors import ColorcnnError, SettingError
from colorcnn.formulations import Formulation
from colorcnn.inference.images import LoadedImage, from_uint8, load_any, to_pil
from colorcnn.runtime import check_precision, resolve_precision, run_network
from colorcnn.trained import TrainedModel, load_model
from colorcnn.trained.model import DEFAULT_WORKING_SIZE

DEFAULT_MODEL = "photo"  # the shipped weights colorize uses unless told otherwise
# Very long strips would otherwise run the network on tens of thousands of columns.
MAX_WORKING_SIDE = 2048
# The course nets pool twice, so their input sides must be multiples of 4; deeper nets
# say their own (`ColourNet.size_multiple`).
_SIDE_MULTIPLE = 4
# Rows converted from Lab to RGB at a time: bounds memory for very large images.
_STRIP_ROWS = 512


def working_shape(
    height: int, width: int, shorter_side: int, multiple: int = _SIDE_MULTIPLE
) -> tuple[int, int]:
    """(h, w) with the shorter side near `shorter_side` (the longer at most
    MAX_WORKING_SIDE), the aspect ratio kept, and both sides multiples of `multiple`."""
    if min(height, width) < 1:
        raise ColorcnnError(f"image is {width}x{height} px; expected at least 1x1")
    scale = min(shorter_side / min(height, width), MAX_WORKING_SIDE / max(height, width))

    def side(length: int) -> int:
        return max(multiple, int(round(length * scale / multiple)) * multiple)

    return side(height), side(width)


@dataclass
class Colorizer:
    """A trained model ready to colourize; build it with `Colorizer.load`."""

    model: torch.nn.Module
    formulation: Formulation
    name: str
    size_multiple: int = _SIDE_MULTIPLE  # the network's input sides are multiples of this
    working_size: int = DEFAULT_WORKING_SIZE  # the shorter side it runs at unless told
    precision: str = "fp32"  # the network's (resolved: fp32, bf16 or fp16)

    @classmethod
    def load(
        cls,
        checkpoint: str | Path,
        backend: str = "torch",
        chroma_gain: float | None = None,
        precision: str = "auto",
    ) -> Colorizer:
        """A shipped name, a run folder or a .safetensors checkpoint with PyTorch, or an
        exported .onnx file with ONNX Runtime (`backend` "onnx"). `precision` is the
        PyTorch network's: auto (bf16 where the hardware computes it natively, else fp32),
        fp32, bf16, or fp16 on CUDA."""
        if backend not in ("torch", "onnx"):
            raise SettingError(f"unknown `backend` {backend!r}; expected torch or onnx")
        if backend == "onnx" and Path(checkpoint).suffix.lower() != ".onnx":
            raise SettingError(
                f"`backend` onnx needs an .onnx file (colorcnn export onnx), got {checkpoint}"
            )
        check_precision(precision)
        return cls.from_model(load_model(checkpoint, chroma_gain=chroma_gain), precision)

    @classmethod
    def from_model(cls, trained: TrainedModel, precision: str = "auto") -> Colorizer:
        if trained.task != "colorize":
            raise ColorcnnError(
                f"{trained.source} is a super-resolution model ({trained.formulation.name}); "
                "use colorcnn upscale with it"
            )
        return cls(
            trained.network,
            trained.formulation,
            trained.name,
            trained.size_multiple,
            trained.working_size,
            resolve_precision(precision, trained.device) if trained.runtime == "torch" else "fp32",
        )

    def check_temperature(self, temperature: float | None) -> None:
        self.formulation.check_temperature(temperature)

    @staticmethod
    def check_size(size: int | None) -> None:
        """A working size (shorter side) the network can run at, or None (the model's)."""
        if size is not None and not _SIDE_MULTIPLE <= size <= MAX_WORKING_SIDE:
            raise SettingError(
                f"`size` must be {_SIDE_MULTIPLE} to {MAX_WORKING_SIDE} px, got {size}"
            )

    @property
    def takes_hints(self) -> bool:
        return self.formulation.takes_hints

    def check_hints(self, hints: list[Hint] | None) -> None:
        if hints and not self.takes_hints:
            raise ColorcnnError(
                f"{self.name} was trained without colour hints; expected a model that takes "
                f"them, such as {DEFAULT_MODEL}"
            )

    def working_picture(self, image: LoadedImage, shorter_side: int) -> torch.Tensor:
        """RGB in [0, 1] (1, 3, h, w): `image` at the working size the network sees."""
        h, w = working_shape(image.height, image.width, shorter_side, self.size_multiple)
        # Resized before it is made RGB: a grey scan's three equal planes would triple the
        # work (each plane is resized alike, so the result is the same).
        small = image.to_uint8_pil()
        small = small.resize((w, h), Image.Resampling.BICUBIC, reducing_gap=3.0)
        return from_uint8(small)

    @torch.inference_mode()
    def predict_ab(
        self,
        image: LoadedImage,
        shorter_side: int,
        temperature: float | None,
        hints: list[Hint] | None = None,
    ) -> torch.Tensor:
        """Chroma (1, 2, h, w) predicted at the working resolution, guided by `hints`."""
        small = self.working_picture(image, shorter_side)  # (1, 3, h, w)
        return self.predict_ab_from(small, temperature, hints, (image.width, image.height))

    @torch.inference_mode()
    def predict_ab_from(
        self,
        small: torch.Tensor,
        temperature: float | None,
        hints: list[Hint] | None = None,
        full_size: tuple[int, int] | None = None,
    ) -> torch.Tensor:
        """Chroma (1, 2, h, w) of a ready `working_picture` (1, 3, h, w): lets a caller that
        also needs its lightness (video) make it once. `hints` are in the pixels of the full
        image, whose (width, height) is `full_size`."""
        self.check_hints(hints)
        h, w = small.shape[-2:]
        inputs = self.formulation.inputs(course_rgb(small))
        if hints:
            if full_size is None:
                raise SettingError("`hints` need `full_size`, the (width, height) they are in")
            maps = render_hints(hints, full_size, (h, w))
            inputs = self.formulation.with_hints(inputs, maps)
        outputs = run_network(self.model, inputs, self.precision)
        return self.formulation.predict_chroma(outputs, inputs, temperature)

    @torch.inference_mode()
    def colorize_loaded(
        self,
        image: LoadedImage,
        shorter_side: int | None = None,
        temperature: float | None = None,
        hints: list[Hint] | None = None,
    ) -> Image.Image:
        """`image` colourized at `shorter_side` (default: the model's `working_size`),
        guided by colour `hints` where the model takes them. The lightness is always the
        image's own."""
        shorter_side = self.working_size if shorter_side is None else shorter_side
        self.check_size(shorter_side)
        return self.join_chroma(image, self.predict_ab(image, shorter_side, temperature, hints))

    @torch.inference_mode()
    def join_chroma(self, image: LoadedImage, ab_small: torch.Tensor) -> Image.Image:
        """`image` with the chroma `ab_small` (1, 2, h, w), predicted at the working size
        (and perhaps smoothed over time, for video), stretched over its full size and joined
        with its own lightness."""
        height, width = image.height, image.width
        # Widen the small chroma once (a few MB), then, band by band, stretch it over the
        # band's rows, join it with the band's own lightness and write 8-bit RGB: a
        # 12-megapixel scan never holds more than its input and output at full size.
        ab_wide = F.interpolate(
            ab_small, size=(ab_small.shape[-2], width), mode="bilinear", align_corners=False
        )
        row_centres = (torch.arange(height, dtype=torch.float32) + 0.5) * (
            ab_small.shape[-2] / height
        ) - 0.5
        output = np.empty((height, width, 3), dtype=np.uint8)
        for top in range(0, height, _STRIP_ROWS):
            rows = slice(top, min(top + _STRIP_ROWS, height))
            source = row_centres[rows].clamp(0, ab_small.shape[-2] - 1)
            below = source.floor().long()
            above = (below + 1).clamp(max=ab_small.shape[-2] - 1)
            weight = (source - below).view(1, 1, -1, 1)
            ab_band = ab_wide[:, :, below] * (1 - weight) + ab_wide[:, :, above] * weight
            band = torch.from_numpy(np.ascontiguousarray(image.pixels[rows])).permute(2, 0, 1)
            if band.shape[0] == 1:  # grey input: L from a table, not a full Lab conversion
                lightness = grey_lightness(band[None])
            else:
                lightness = rgb_lightness(band[None])  # Y alone, not a full Lab conversion
            output[rows] = lab_to_rgb_uint8(lightness[0, 0], ab_band[0]).numpy()
        return to_pil(output, image.alpha)

    def colorize(
        self,
        image: str | Path | Image.Image | np.ndarray,
        shorter_side: int | None = None,
        temperature: float | None = None,
        hints: list[Hint] | None = None,
    ) -> Image.Image:
        """Colourize a path, a PIL image or an array; returns a PIL image of the same size.
        `shorter_side` defaults to the model's `working_size`; `hints` say which colour
        some points are (colorcnn.Hint)."""
        return self.colorize_loaded(load_any(image), shorter_side, temperature, hints)


def colorize(
    image: str | Path | Image.Image | np.ndarray,
    model: str | Path = DEFAULT_MODEL,
    size: int | None = None,
    temperature: float | None = None,
    hints: list[Hint] | None = None,
) -> Image.Image:
    """Colourize one image: a path, a PIL image or an array (H, W) / (H, W, 3|4), at the
    working size `size` (default: the model's own; 160 for `photo`, 32 for models trained on
    CIFAR-10).

    `model` is a shipped name (`colorcnn models`), a run folder or a .safetensors
    checkpoint; the result is a PIL image of the input's size. `hints` are colour hints
    (`colorcnn.Hint(x, y, "#c03020")`, in the image's own pixels) for models that take them;
    only their chroma is used, the lightness stays the image's. To colourize many images,
    load once with `Colorizer.load` and call its `colorize`.
    """
    return Colorizer.load(model).colorize(image, size, temperature, hints)


def sample_photos() -> list[Path]:
    """The grey sample photos bundled with the package (credits in weights/CREDITS.md)."""
    return sorted((Path(__file__).resolve().parent.parent / "samples").glob("*.jpg"))

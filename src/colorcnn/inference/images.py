"""Reading every kind of image safely, and writing results without half-written files."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from colorcnn.errors import ColorcnnError
from colorcnn.files import atomic_path

# Modes whose pixels are already grey; everything else is converted to grey first.
_GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"})
# Pillow's 16-bit grey modes, with the value that maps to white.
_DEEP_GREY_WHITE = {"I;16": 65535.0, "I;16B": 65535.0, "I;16L": 65535.0}
# 32-bit integer ("I") and float ("F") grey say nothing of their scale: "I" comes from
# 32-bit TIFFs and from Pillow's own convert("I") of 8-bit grey, "F" from float TIFFs in
# [0, 1] or in 0..255. White is the first of these scales that holds the brightest pixel.
_WIDE_GREY_SCALES = {"I": (255.0, 65535.0), "F": (1.0, 255.0, 65535.0)}


def _scale_of(grey: np.ndarray, scales: tuple[float, ...]) -> float:
    brightest = float(grey.max()) if grey.size else 0.0
    return next((white for white in scales if brightest <= white), brightest)


@dataclass
class LoadedImage:
    """An image ready to colourize, with what to restore.

    `pixels` are float32 in [0, 1]: (H, W, 3) for colour inputs, (H, W, 1) for grey ones,
    so that a grey 12-megapixel scan costs one plane, not three.
    """

    pixels: np.ndarray
    alpha: np.ndarray | None  # (H, W) uint8, kept as it was
    was_colour: bool  # the input carried colour, which the tool ignores
    source_mode: str

    @property
    def height(self) -> int:
        return self.pixels.shape[0]

    @property
    def width(self) -> int:
        return self.pixels.shape[1]

    def rgb_rows(self, rows: slice) -> np.ndarray:
        """RGB (h, W, 3) of a band of rows."""
        band = self.pixels[rows]
        return band if band.shape[2] == 3 else np.repeat(band, 3, axis=2)

    def to_uint8_pil(self) -> Image.Image:
        # pixels lie in [0, 1], so adding 0.5 and truncating rounds without a clip.
        pixels = (self.pixels * 255.0 + 0.5).astype(np.uint8)
        return Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels)


def _has_colour(rgb: np.ndarray) -> bool:
    # Greyscale photos saved as RGB differ between channels only by rounding.
    return bool(np.abs(rgb[..., 0] - rgb[..., 1]).max() > 2 / 255 or
                np.abs(rgb[..., 1] - rgb[..., 2]).max() > 2 / 255)  # fmt: skip


def read_image(path: str | Path) -> LoadedImage:
    """Open any still image Pillow reads: EXIF orientation applied, alpha kept, 16-bit grey
    read at full precision (the output is 8-bit), CMYK and palette images converted; the
    first frame of an animation or a multi-page file. 32-bit integer and float grey, which
    carry no scale of their own, are read on the first of the scales 0..1 (floats only),
    0..255 and 0..65535 that holds their brightest pixel (beyond that, on their own
    range)."""
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as opened:
                opened.seek(0)
                image = ImageOps.exif_transpose(opened)
                image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own text quotes its hard limit, twice this one: only ours is said.
        raise ColorcnnError(
            f"{path} is too large to decode safely; expected at most "
            f"{Image.MAX_IMAGE_PIXELS:,} pixels"
        ) from None
    except IsADirectoryError:
        raise ColorcnnError(f"{path} is a folder, not an image") from None
    except FileNotFoundError:
        raise ColorcnnError(f"{path} does not exist; expected an image file") from None
    except PermissionError:
        raise ColorcnnError(f"{path} cannot be read (permission denied)") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as error:
        raise ColorcnnError(f"{path} could not be read as an image ({error})") from None
    return from_pil(image)


def from_pil(image: Image.Image) -> LoadedImage:
    mode = image.mode
    alpha = None
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        alpha = np.asarray(image.convert("RGBA"))[..., 3].copy()
    if mode in _DEEP_GREY_WHITE:
        grey = np.asarray(image, dtype=np.float64) / _DEEP_GREY_WHITE[mode]
        grey = np.clip(grey, 0.0, 1.0).astype(np.float32)
        return LoadedImage(grey[..., None], alpha, False, mode)
    if mode in _WIDE_GREY_SCALES:
        grey = np.nan_to_num(np.asarray(image, dtype=np.float64), nan=0.0)
        grey = np.clip(grey / _scale_of(grey, _WIDE_GREY_SCALES[mode]), 0.0, 1.0)
        return LoadedImage(grey.astype(np.float32)[..., None], alpha, False, mode)
    if mode in _GREY_MODES:
        grey = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
        return LoadedImage(grey[..., None], alpha, False, mode)
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return LoadedImage(rgb, alpha, _has_colour(rgb), mode)


def from_array(array: np.ndarray) -> LoadedImage:
    """(H, W) or (H, W, 1|3|4) arrays: uint8, uint16, or floats in [0, 1]."""
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ColorcnnError(
            f"expected an image array of shape (H, W) or (H, W, 1|3|4), got {array.shape}"
        )
    if array.dtype == np.uint8:
        scaled = array.astype(np.float32) / 255.0
    elif array.dtype == np.uint16:
        scaled = array.astype(np.float32) / 65535.0
    elif np.issubdtype(array.dtype, np.floating):
        scaled = np.clip(array.astype(np.float32), 0.0, 1.0)
    else:
        raise ColorcnnError(f"expected uint8, uint16 or float pixels, got {array.dtype}")
    alpha = None
    if scaled.ndim == 3 and scaled.shape[2] == 4:
        alpha = np.round(scaled[..., 3] * 255).astype(np.uint8)
        scaled = scaled[..., :3]
    if scaled.ndim == 2:
        return LoadedImage(scaled[..., None], alpha, False, "array")
    return LoadedImage(scaled, alpha, _has_colour(scaled), "array")


def load_any(image: str | Path | Image.Image | np.ndarray) -> LoadedImage:
    """A path, a PIL image or an array, read by `read_image`, `from_pil` or `from_array`."""
    if isinstance(image, (str, Path)):
        return read_image(image)
    if isinstance(image, Image.Image):
        return from_pil(image)
    if isinstance(image, np.ndarray):
        return from_array(image)
    raise ColorcnnError(
        f"expected a path, a PIL image or a NumPy array, got {type(image).__name__}"
    )


def from_uint8(picture: Image.Image) -> torch.Tensor:
    """An 8-bit picture as RGB in [0, 1] (1, 3, H, W): the inverse of `to_uint8`."""
    pixels = np.asarray(picture.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(pixels).permute(2, 0, 1)[None]


def to_uint8(rgb: torch.Tensor) -> np.ndarray:
    """RGB in [0, 1] (3, H, W) -> rounded 8-bit (H, W, 3), as images are written."""
    return (rgb.permute(1, 2, 0) * 255.0).round().clamp(0, 255).to(torch.uint8).numpy()


def to_pil(pixels: np.ndarray, alpha: np.ndarray | None) -> Image.Image:
    """8-bit RGB (H, W, 3) and an optional alpha (H, W) -> a PIL image. Outputs are 8-bit
    whatever the input's depth."""
    if alpha is None:
        return Image.fromarray(pixels, "RGB")
    return Image.fromarray(np.dstack((pixels, alpha)), "RGBA")


def save_image(image: Image.Image, target: Path, fast: bool = False) -> None:
    """Write atomically; the format follows the suffix. JPEG cannot hold alpha, so an image
    with alpha is refused for it rather than silently flattened. `fast` trades file size
    for time where the format allows (PNG: about 5 times faster, a quarter larger)."""
    suffix = target.suffix.lower()
    if image.mode == "RGBA" and suffix in (".jpg", ".jpeg"):
        raise ColorcnnError(f"{target}: JPEG cannot keep the input's transparency; use .png")
    options = {"quality": 95} if suffix in (".jpg", ".jpeg") else {}
    if fast and suffix == ".png":
        options["compress_level"] = 1
    try:
        with atomic_path(target) as tmp_path:
            image.save(tmp_path, format=Image.registered_extensions().get(suffix, "PNG"), **options)
    except (OSError, ValueError, KeyError) as error:  # Pillow's encoders raise all three
        reason = getattr(error, "strerror", None) or error
        raise ColorcnnError(f"cannot write {target} ({reason})") from None

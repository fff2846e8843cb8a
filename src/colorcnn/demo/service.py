"""What the web demo does with an upload, apart from the page: limits, models loaded once,
the colourized picture, its full-resolution file and a message for a person.

Kept free of Gradio so that it is tested directly and the page stays a thin layer.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from colorcnn.color.spaces import join_lightness_and_ab, rgb_to_lab
from colorcnn.errors import ColorcnnError
from colorcnn.files import IMAGE_SUFFIXES, atomic_path
from colorcnn.inference.colorize import DEFAULT_MODEL, Colorizer
from colorcnn.inference.images import LoadedImage, from_uint8, read_image, save_image, to_uint8
from colorcnn.weights import shipped_models

# Results of this many recent requests stay on disk for their download links; older ones
# are deleted (Gradio's own copies are swept by age, see app.py).
KEPT_RESULTS = 64


@dataclass(frozen=True)
class DemoLimits:
    """What one upload may be. The page shows pictures larger than `display_pixels`
    scaled down; the download is always at full resolution."""

    max_upload_mb: float = 25.0
    max_pixels: int = 40_000_000
    display_pixels: int = 4_000_000

    def __post_init__(self) -> None:
        if not self.max_upload_mb > 0:
            raise ColorcnnError(
                f"max upload must be a positive size in MB, got {self.max_upload_mb}"
            )
        if self.max_pixels < 1 or self.display_pixels < 1:
            raise ColorcnnError(
                f"pixel limits must be positive, got {self.max_pixels} and {self.display_pixels}"
            )


@dataclass
class DemoResult:
    grey: Image.Image  # what the network saw, for the page (perhaps scaled down)
    colour: Image.Image  # the result, for the page (perhaps scaled down)
    download: Path  # the result at the input's full size, PNG
    shown_files: tuple[Path, Path]  # grey and colour for the page, as JPEG files
    width: int
    height: int
    message: str  # one or two sentences for the page


# JPEG, which the page's pictures are written in, holds at most 65,535 px a side.
_DISPLAY_MAX_SIDE = 8192


def _pixel_count(pixels: int) -> str:
    return f"{pixels / 1e6:.1f} MP" if pixels >= 1e6 else f"{pixels:,} px"


def _on_white(image: Image.Image, alpha=None) -> Image.Image:
    """RGB for the page: transparent parts over white, as a viewer shows them, instead of
    whatever colour hides under them."""
    if alpha is None and image.mode not in ("RGBA", "LA"):
        return image.convert("RGB")
    if alpha is None:
        alpha = np.asarray(image.getchannel("A"))
    background = Image.new("RGB", image.size, "white")
    background.paste(image.convert("RGB"), mask=Image.fromarray(alpha))
    return background


def _own_temperature(colorizer: Colorizer) -> float | None:
    formulation = colorizer.formulation
    return float(formulation.temperature) if formulation.name == "ab-bins" else None


class DemoService:
    """Colourizes uploads for the page; safe to call from several request threads."""

    def __init__(
        self,
        default_model: str = DEFAULT_MODEL,
        limits: DemoLimits | None = None,
        work_dir: Path | None = None,
    ) -> None:
        self.limits = limits or DemoLimits()
        self.default_model = str(default_model)
        self._colorizers: dict[str, Colorizer] = {}
        self._load_lock = threading.Lock()
        self._results_lock = threading.Lock()
        self._recent: deque[Path] = deque()
        self.colorizer(self.default_model)  # a bad --model fails at start, not in the page
        # Made only once the model loaded, so that a failed start leaves nothing behind.
        self._owns_work_dir = work_dir is None
        self.work_dir = Path(work_dir or tempfile.mkdtemp(prefix="colorcnn-demo-"))
        self.work_dir.mkdir(parents=True, exist_ok=True)

    # Models -------------------------------------------------------------------------------

    def model_names(self) -> list[str]:
        """The default model first, then every other shipped model."""
        names = [self.default_model]
        names += [name for name in shipped_models() if name != self.default_model]
        return names

    def model_choices(self) -> list[tuple[str, str]]:
        """(label, name) for the page: a model given as a path shows only its last part,
        so that the page does not show visitors the server's folders."""
        shipped = shipped_models()
        return [
            (name if name in shipped else f"{Path(name).name} (--model)", name)
            for name in self.model_names()
        ]

    def colorizer(self, name: str) -> Colorizer:
        with self._load_lock:  # two first requests for one model load it once
            if name not in self._colorizers:
                if name not in self.model_names():
                    raise ColorcnnError(
                        f"unknown model {name!r}; expected one of {', '.join(self.model_names())}"
                    )
                self._colorizers[name] = Colorizer.load(name)
            return self._colorizers[name]

    def default_temperature(self, name: str) -> float | None:
        """The model's annealed-mean temperature, or None when it has none (only ab-bins
        models decode with a temperature)."""
        return _own_temperature(self.colorizer(name))

    def describe(self, name: str) -> str:
        return self.colorizer(name).name

    # Uploads ------------------------------------------------------------------------------

    def check_upload(self, path: Path, shown_name: str) -> None:
        """Refuse an upload that is too big, in bytes or in pixels, before decoding it."""
        size_mb = path.stat().st_size / 1e6
        if size_mb > self.limits.max_upload_mb:
            raise ColorcnnError(
                f"{shown_name} is {size_mb:.3g} MB; this demo accepts files up to "
                f"{self.limits.max_upload_mb:g} MB"
            )
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            raise ColorcnnError(
                f"{shown_name} is not a supported image file; expected one of "
                f"{', '.join(sorted(IMAGE_SUFFIXES))}"
            )
        try:
            with Image.open(path) as opened:  # reads the header only
                width, height = opened.size
        except Exception:  # noqa: BLE001 - read_image gives the precise message
            return
        if width * height > self.limits.max_pixels:
            raise ColorcnnError(
                f"{shown_name} is {width}x{height} px ({_pixel_count(width * height)}); this "
                f"demo accepts at most {_pixel_count(self.limits.max_pixels)}"
            )

    def colorize_upload(
        self,
        path: str | Path,
        model: str | None = None,
        temperature: float | None = None,
        size: int | None = None,
    ) -> DemoResult:
        """Colourize one uploaded file, at the working `size` (default: the model's own).
        Problems come back as a ColorcnnError whose message names the file as the person
        called it, not by the server's temporary path."""
        path = Path(path)
        shown_name = path.name
        model = model or self.default_model
        try:
            self.check_upload(path, shown_name)
            colorizer = self.colorizer(model)
            own_temperature = _own_temperature(colorizer)
            if own_temperature is None:
                temperature = None  # the page's slider does not apply to this model
            elif temperature is None:
                temperature = own_temperature
            colorizer.check_temperature(temperature)
            start = time.perf_counter()
            loaded = read_image(path)
            colour = colorizer.colorize_loaded(loaded, size, temperature)
            seconds = time.perf_counter() - start
            grey, shown = self._for_display(loaded, colour)
            download, shown_files = self._keep(colour, grey, shown, path.stem)
        except ColorcnnError as error:
            raise ColorcnnError(str(error).replace(str(path), shown_name)) from None
        at = "" if temperature is None else f" at temperature {temperature:g}"
        message = (
            f"Colourized {shown_name} ({loaded.width}x{loaded.height} px) with "
            f"{colorizer.name}{at} in {seconds:.2f} s."
        )
        if loaded.was_colour:
            message += " The upload had colour; it was made grey first."
        if shown.size != colour.size:
            message += f" Shown at {shown.width}x{shown.height}; the download is full size."
        return DemoResult(grey, shown, download, shown_files, loaded.width, loaded.height, message)

    def _for_display(
        self, loaded: LoadedImage, colour: Image.Image
    ) -> tuple[Image.Image, Image.Image]:
        """The grey the network saw and the result, scaled down to at most
        `display_pixels`."""
        scale = min(
            1.0,
            (self.limits.display_pixels / (loaded.width * loaded.height)) ** 0.5,
            _DISPLAY_MAX_SIDE / max(loaded.width, loaded.height),
        )
        size = (max(1, round(loaded.width * scale)), max(1, round(loaded.height * scale)))
        shown = _on_white(colour)
        if shown.size != size:
            shown = shown.resize(size, Image.Resampling.LANCZOS)
        if loaded.pixels.shape[2] == 1:  # a grey upload: show it as it came
            grey = _on_white(loaded.to_uint8_pil(), loaded.alpha)
            if grey.size != size:
                grey = grey.resize(size, Image.Resampling.LANCZOS)
            return grey, shown
        # A colour upload: the result's own lightness without its chroma.
        lightness = rgb_to_lab(from_uint8(shown))[:, :1]
        grey = join_lightness_and_ab(lightness, torch.zeros_like(lightness).expand(-1, 2, -1, -1))
        return Image.fromarray(to_uint8(grey[0])), shown

    def _keep(
        self, colour: Image.Image, grey: Image.Image, shown: Image.Image, stem: str
    ) -> tuple[Path, tuple[Path, Path]]:
        """Write the full-size PNG and the page's two pictures into a folder of their own.
        Writes are atomic: a download never sees half a file. The page's pictures are
        JPEG at quality 95 without chroma subsampling: about 30 times faster to encode
        than PNG, which the page would otherwise make of them at every request."""
        folder = self.work_dir / uuid.uuid4().hex
        with self._results_lock:  # listed first, so that a failed write is pruned too
            self._recent.append(folder)
            while len(self._recent) > KEPT_RESULTS:
                shutil.rmtree(self._recent.popleft(), ignore_errors=True)
        download = folder / f"{stem}-colorized.png"
        save_image(colour, download, fast=True)
        shown_files = (folder / "grey.jpg", folder / "colour.jpg")
        for picture, target in zip((grey, shown), shown_files, strict=True):
            try:
                with atomic_path(target) as temporary:
                    picture.save(temporary, format="JPEG", quality=95, subsampling=0)
            except (OSError, ValueError) as error:
                raise ColorcnnError(f"cannot write the page's picture ({error})") from None
        return download, shown_files

    def close(self) -> None:
        if self._owns_work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

"""What the web demo does with an upload, apart from the page: limits, models loaded once,
uploads decoded once, the colourized picture, its full-resolution file, colour hints (their
file, and the points marked on the page's picture), colourized video clips, upscaled
photos and a message for a person.

Kept free of Gradio so that it is tested directly and the page stays a thin layer.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from colorcnn.color.hints import Hint
from colorcnn.color.spaces import join_lightness_and_ab, rgb_to_lab
from colorcnn.errors import ColorcnnError
from colorcnn.files import IMAGE_SUFFIXES, VIDEO_SUFFIXES, atomic_path
from colorcnn.inference.colorize import DEFAULT_MODEL, Colorizer
from colorcnn.inference.hints import sidecar_path, write_hints_file
from colorcnn.inference.images import LoadedImage, from_uint8, read_image, save_image, to_uint8
from colorcnn.inference.video import VideoInfo, colorize_video, probe_video
from colorcnn.runtime import check_precision
from colorcnn.superres.upscale import SHIPPED_UPSCALERS, Upscaler
from colorcnn.weights import describe_shipped, shipped_models

# Results of this many recent requests stay on disk for their download links; older ones
# are deleted (Gradio's own copies are swept by age, see app.py).
KEPT_RESULTS = 64
# Decoded uploads kept in memory, in bytes of float32 pixels: every change of a colour hint
# colourizes the same photo again, and decoding a large JPEG can cost more than the
# network at its working size. 256 MB holds a 1 MP photo many times over; a photo larger
# than this alone is decoded again each time instead.
DECODED_UPLOADS_BYTES = 256 * 2**20
# Points one request may carry: each is drawn on the picture and rendered for the network.
MAX_HINTS = 64
# Upscaled results above this are refused: 16 MP takes about 10 s at x4 on 2 cores and
# 64 MB as the page's picture before it is scaled down.
MAX_UPSCALED_PIXELS = 16_000_000


@dataclass(frozen=True)
class DemoLimits:
    """What one upload may be. The page shows pictures larger than `display_pixels`
    scaled down; the download is always at full resolution. A video clip is held to the
    upload size, to `max_pixels` in each frame and to `max_video_seconds` in length: every
    frame goes through the network, about 10 frames a second at 1280x720 on 2 cores."""

    max_upload_mb: float = 25.0
    max_pixels: int = 40_000_000
    display_pixels: int = 4_000_000
    max_video_seconds: float = 20.0

    def __post_init__(self) -> None:
        if not self.max_upload_mb > 0:
            raise ColorcnnError(
                f"max upload must be a positive size in MB, got {self.max_upload_mb}"
            )
        if not self.max_video_seconds > 0:
            raise ColorcnnError(
                f"max video length must be a positive number of seconds, got "
                f"{self.max_video_seconds}"
            )
        if self.max_pixels < 1 or self.display_pixels < 1:
            raise ColorcnnError(
                f"pixel limits must be positive, got {self.max_pixels} and {self.display_pixels}"
            )


@dataclass(frozen=True)
class ResultView:
    """A result as the page shows it, which is all the page keeps between requests: where
    its colour picture is, and how that picture's pixels map onto the image's own."""

    colour_file: Path  # the page's colour picture (JPEG), in the result's own folder
    download: Path  # the result at full size (PNG), beside it
    image_size: tuple[int, int]  # (width, height) of the upload, the hints' pixels
    shown_size: tuple[int, int]  # (width, height) of the page's pictures

    def image_pixel(self, shown_x: float, shown_y: float) -> tuple[int, int] | None:
        """The image pixel under pixel (shown_x, shown_y) of the page's picture: the one
        holding that pixel's centre. None outside the picture."""
        (width, height), (shown_width, shown_height) = self.image_size, self.shown_size
        if not (0 <= shown_x < shown_width and 0 <= shown_y < shown_height):
            return None
        x = min(width - 1, int((shown_x + 0.5) * width / shown_width))
        y = min(height - 1, int((shown_y + 0.5) * height / shown_height))
        return x, y

    def shown_point(self, x: float, y: float) -> tuple[float, float]:
        """Where image pixel (x, y) lies on the page's picture (pixel centres match)."""
        (width, height), (shown_width, shown_height) = self.image_size, self.shown_size
        return (x + 0.5) * shown_width / width - 0.5, (y + 0.5) * shown_height / height - 0.5


@dataclass
class DemoResult:
    grey: Image.Image  # what the network saw, for the page (perhaps scaled down)
    colour: Image.Image  # the result, for the page (perhaps scaled down)
    download: Path  # the result at the input's full size, PNG
    shown_files: tuple[Path, Path]  # grey and colour for the page, as JPEG files
    width: int
    height: int
    message: str  # one or two sentences for the page
    hints: tuple[Hint, ...] = ()  # the colour hints it followed, in the image's pixels
    hints_file: Path | None = None  # those hints as JSON (read_hints_file), if any

    @property
    def view(self) -> ResultView:
        return ResultView(
            self.shown_files[1], self.download, (self.width, self.height), self.colour.size
        )


@dataclass(frozen=True)
class VideoResult:
    """A colourized clip as the page shows it and downloads it."""

    video: Path  # the colourized clip (H.264 MP4), in the result's own folder
    frames: int
    width: int
    height: int
    message: str  # one or two sentences for the page


@dataclass(frozen=True)
class UpscaleResult:
    """An upscaled photo as the page shows it and downloads it."""

    shown: Image.Image  # the result, for the page (perhaps scaled down)
    download: Path  # the result at full size, PNG
    width: int  # of the result
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


@dataclass
class _DecodedUpload:
    image: LoadedImage
    grey: Image.Image | None = None  # the page's picture of a grey upload, once made
    grey_file: Path | None = None  # that picture, once written

    @property
    def nbytes(self) -> int:
        shown = 0 if self.grey is None else self.grey.width * self.grey.height * 3
        return self.image.pixels.nbytes + shown


class _DecodedUploads:
    """The most recently used uploads, decoded, within a budget of bytes. An upload is
    known by its path, modification time and size: Gradio stores each upload under a
    path of its own."""

    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        self._entries: OrderedDict[tuple[str, int, int], _DecodedUpload] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: Path) -> _DecodedUpload:
        status = path.stat()
        key = (str(path), status.st_mtime_ns, status.st_size)
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        # Decoded outside the lock, so that one large upload does not hold up the others;
        # two first requests for one upload may both decode it, and the later one is kept.
        upload = _DecodedUpload(read_image(path))
        with self._lock:
            self._entries[key] = upload
            self._entries.move_to_end(key)
            while self._entries and self._bytes() > self.budget_bytes:
                self._entries.popitem(last=False)
        return upload

    def _bytes(self) -> int:
        return sum(entry.nbytes for entry in self._entries.values())


def _marker_font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size)
    except (OSError, ImportError, TypeError):  # before Pillow 10.1: its small bitmap font
        return ImageFont.load_default()


def draw_hint_markers(
    picture: Image.Image, points: Sequence[tuple[float, float, str]], selected: int | None
) -> Image.Image:
    """`picture` with each point (x, y, "#colour"), in its pixels, marked by a dot of its
    colour in a black and white ring, numbered from 1; the `selected` one (an index) in a
    larger ring. Sizes follow the picture, so that the page shows them alike."""
    marked = picture.convert("RGB")
    draw = ImageDraw.Draw(marked)
    radius = max(6, round(0.012 * max(marked.size)))
    font = _marker_font(radius * 2)
    for index, (x, y, colour) in enumerate(points):
        if index == selected:
            ring = radius * 2
            draw.ellipse((x - ring, y - ring, x + ring, y + ring), outline="white", width=3)
            draw.ellipse((x - ring + 3, y - ring + 3, x + ring - 3, y + ring - 3),
                         outline="black", width=2)  # fmt: skip
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour,
                     outline="white", width=max(2, radius // 3))  # fmt: skip
        draw.ellipse((x - radius - 1, y - radius - 1, x + radius + 1, y + radius + 1),
                     outline="black", width=1)  # fmt: skip
        draw.text((x + radius + 2, y - radius - 2), str(index + 1), fill="white", font=font,
                  anchor="lb", stroke_width=2, stroke_fill="black")  # fmt: skip
    return marked


class DemoService:
    """Colourizes uploads for the page; safe to call from several request threads."""

    def __init__(
        self,
        default_model: str = DEFAULT_MODEL,
        limits: DemoLimits | None = None,
        work_dir: Path | None = None,
        precision: str = "auto",
    ) -> None:
        self.limits = limits or DemoLimits()
        self.precision = check_precision(precision)  # every model's network computes in it
        self.default_model = str(default_model)
        self._colorizers: dict[str, Colorizer] = {}
        self._upscalers: dict[int, Upscaler] = {}
        self._load_lock = threading.Lock()
        self._results_lock = threading.Lock()
        self._recent: deque[Path] = deque()
        self._uploads = _DecodedUploads(DECODED_UPLOADS_BYTES)
        self.colorizer(self.default_model)  # a bad --model fails at start, not in the page
        # Made only once the model loaded, so that a failed start leaves nothing behind.
        self._owns_work_dir = work_dir is None
        self.work_dir = Path(work_dir or tempfile.mkdtemp(prefix="colorcnn-demo-"))
        self.work_dir.mkdir(parents=True, exist_ok=True)

    # Models -------------------------------------------------------------------------------

    def model_names(self) -> list[str]:
        """The default model first, then every other shipped colourizing model (the
        upscalers have a tab of their own)."""
        names = [self.default_model]
        names += [
            name
            for name in shipped_models()
            if name != self.default_model and name not in SHIPPED_UPSCALERS.values()
        ]
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
                self._colorizers[name] = Colorizer.load(name, precision=self.precision)
            return self._colorizers[name]

    def upscaler(self, scale: int) -> Upscaler:
        """The shipped upscaler for `scale` (2 or 4), loaded once."""
        with self._load_lock:
            if scale not in self._upscalers:
                self._upscalers[scale] = Upscaler.load(scale=scale, precision=self.precision)
            return self._upscalers[scale]

    def default_temperature(self, name: str) -> float | None:
        """The model's annealed-mean temperature, or None when it has none (only ab-bins
        models decode with a temperature)."""
        return _own_temperature(self.colorizer(name))

    def describe(self, name: str) -> str:
        return self.colorizer(name).name

    def takes_hints(self, name: str) -> bool:
        """Whether the model was trained with colour hints (only those take them)."""
        return self.colorizer(name).takes_hints

    # Uploads ------------------------------------------------------------------------------

    def _check_file(self, path: Path, shown_name: str, kind: str, suffixes: frozenset[str]) -> None:
        """Refuse a file over the upload limit, or not of one of `suffixes`."""
        size_mb = path.stat().st_size / 1e6
        if size_mb > self.limits.max_upload_mb:
            raise ColorcnnError(
                f"{shown_name} is {size_mb:.3g} MB; this demo accepts files up to "
                f"{self.limits.max_upload_mb:g} MB"
            )
        if path.suffix.lower() not in suffixes:
            raise ColorcnnError(
                f"{shown_name} is not a supported {kind} file; expected one of "
                f"{', '.join(sorted(suffixes))}"
            )

    def check_upload(self, path: Path, shown_name: str) -> None:
        """Refuse an upload that is too big, in bytes or in pixels, before decoding it."""
        self._check_file(path, shown_name, "image", IMAGE_SUFFIXES)
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

    def check_video_upload(self, path: Path, shown_name: str) -> VideoInfo:
        """Refuse a clip that is too big in bytes, is not a video, has frames of too many
        pixels or lasts too long, before a frame is colourized; what it is otherwise."""
        self._check_file(path, shown_name, "video", VIDEO_SUFFIXES)
        info = probe_video(path)  # opens it by its container: one line if it is no video
        if info.width * info.height > self.limits.max_pixels:
            raise ColorcnnError(
                f"{shown_name} has frames of {info.width}x{info.height} px "
                f"({_pixel_count(info.width * info.height)}); this demo accepts at most "
                f"{_pixel_count(self.limits.max_pixels)} a frame"
            )
        seconds = info.seconds
        if seconds is None and info.frames and info.fps:
            seconds = float(info.frames / info.fps)
        if seconds is None:
            raise ColorcnnError(
                f"{shown_name} does not say how long it is; this demo accepts clips of up to "
                f"{self.limits.max_video_seconds:g} s whose length it can read"
            )
        if seconds > self.limits.max_video_seconds:
            raise ColorcnnError(
                f"{shown_name} lasts {seconds:.1f} s; this demo accepts clips of up to "
                f"{self.limits.max_video_seconds:g} s"
            )
        return info

    def colorize_video_upload(
        self, path: str | Path, model: str | None = None, stabilize: bool = True
    ) -> VideoResult:
        """Colourize one uploaded clip with the model's cached Colorizer, at its own
        working size and temperature, into an H.264 MP4 in a result folder of its own
        (colorize_video: frames, rate, size and sound kept). Refusals and problems come
        back as a ColorcnnError naming the file as the person called it."""
        path = Path(path)
        shown_name = path.name
        model = model or self.default_model
        try:
            info = self.check_video_upload(path, shown_name)
            colorizer = self.colorizer(model)
            target = self._new_result_folder() / f"{path.stem}-colorized.mp4"
            done = colorize_video(path, target, colorizer, stabilize=stabilize, show_progress=False)
        except ColorcnnError as error:
            raise ColorcnnError(str(error).replace(str(path), shown_name)) from None
        length = f", {info.seconds:.1f} s" if info.seconds is not None else ""
        steadiness = "colours kept steady" if done.stabilized else "each frame coloured alone"
        message = (
            f"Colourized {shown_name} ({done.frames} frames, {done.width}x{done.height} px"
            f"{length}) with {colorizer.name} in {done.seconds:.1f} s, {steadiness}."
        )
        if done.had_colour:
            message += " The clip had colour; it was made grey first."
        if done.had_audio:
            message += " Its sound is kept."
        if done.width % 2 or done.height % 2:
            message += (
                " Its odd size is written in 4:4:4, which some browsers do not play; "
                "the download plays in a video player."
            )
        return VideoResult(target, done.frames, done.width, done.height, message)

    @staticmethod
    def _check_hints(hints: Sequence[Hint], colorizer: Colorizer, image: LoadedImage) -> None:
        """Refuse hints the model cannot take, too many of them, or one outside the image."""
        colorizer.check_hints(list(hints))
        if len(hints) > MAX_HINTS:
            raise ColorcnnError(
                f"{len(hints)} colour hints is too many; this demo takes at most {MAX_HINTS}"
            )
        for hint in hints:
            hint.check_inside(image.width, image.height)

    def colorize_upload(
        self,
        path: str | Path,
        model: str | None = None,
        temperature: float | None = None,
        size: int | None = None,
        hints: Sequence[Hint] = (),
    ) -> DemoResult:
        """Colourize one uploaded file, at the working `size` (default: the model's own),
        guided by colour `hints` (in the image's own pixels) where the model takes them.
        Problems come back as a ColorcnnError whose message names the file as the person
        called it, not by the server's temporary path.

        The decoded upload is kept (DECODED_UPLOADS_BYTES), so that colourizing it again
        with other hints or settings costs the network and the writing only."""
        path = Path(path)
        shown_name = path.name
        model = model or self.default_model
        hints = tuple(hints)
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
            upload = self._uploads.get(path)
            loaded = upload.image
            self._check_hints(hints, colorizer, loaded)
            colour = colorizer.colorize_loaded(loaded, size, temperature, list(hints) or None)
            seconds = time.perf_counter() - start
            grey, shown = self._for_display(upload, colour)
            folder = self._new_result_folder()
            download, shown_files = self._keep(folder, colour, grey, shown, path.stem, upload)
            hints_file = None
            if hints:
                hints_file = sidecar_path(folder / path.name)
                write_hints_file(hints_file, list(hints))
        except ColorcnnError as error:
            raise ColorcnnError(str(error).replace(str(path), shown_name)) from None
        at = "" if temperature is None else f" at temperature {temperature:g}"
        guided = f" and {len(hints)} colour hint{'s' if len(hints) > 1 else ''}" if hints else ""
        message = (
            f"Colourized {shown_name} ({loaded.width}x{loaded.height} px) with "
            f"{colorizer.name}{at}{guided} in {seconds:.2f} s."
        )
        if loaded.was_colour:
            message += " The upload had colour; it was made grey first."
        if shown.size != colour.size:
            message += f" Shown at {shown.width}x{shown.height}; the download is full size."
        return DemoResult(
            grey, shown, download, shown_files, loaded.width, loaded.height, message, hints,
            hints_file,
        )  # fmt: skip

    def upscale_upload(self, path: str | Path, scale: int = 4) -> UpscaleResult:
        """Upscale one uploaded photo by `scale` with the shipped upscaler: colour stays
        colour, grey stays grey, transparency is kept. Problems come back as a
        ColorcnnError naming the file as the person called it."""
        path = Path(path)
        shown_name = path.name
        try:
            upscaler = self.upscaler(int(scale))
            self.check_upload(path, shown_name)
            loaded = self._uploads.get(path).image
            width, height = loaded.width * upscaler.scale, loaded.height * upscaler.scale
            if width * height > MAX_UPSCALED_PIXELS:
                raise ColorcnnError(
                    f"{shown_name} upscaled x{upscaler.scale} would be {width}x{height} px "
                    f"({_pixel_count(width * height)}); this demo makes at most "
                    f"{_pixel_count(MAX_UPSCALED_PIXELS)}"
                )
            start = time.perf_counter()
            result = upscaler.upscale_loaded(loaded)
            seconds = time.perf_counter() - start
            download = self._new_result_folder() / f"{path.stem}-x{upscaler.scale}.png"
            save_image(result, download, fast=True)
        except ColorcnnError as error:
            raise ColorcnnError(str(error).replace(str(path), shown_name)) from None
        shown = _on_white(result)
        fitted = min(1.0, (self.limits.display_pixels / (width * height)) ** 0.5)
        if fitted < 1.0:
            size = (max(1, round(width * fitted)), max(1, round(height * fitted)))
            shown = shown.resize(size, Image.Resampling.LANCZOS)
        gain = describe_shipped(SHIPPED_UPSCALERS[upscaler.scale]).get("heldout_upscaling")
        measured = (
            f" On photos it never saw it gains {gain['y_psnr_gain']:+.2f} dB over bicubic."
            if gain
            else ""
        )
        message = (
            f"Upscaled {shown_name} ({loaded.width}x{loaded.height} px) x{upscaler.scale} to "
            f"{width}x{height} px with {upscaler.name} in {seconds:.2f} s.{measured}"
        )
        if shown.size != result.size:
            message += f" Shown at {shown.width}x{shown.height}; the download is full size."
        return UpscaleResult(shown, download, width, height, message)

    def colour_at(self, view: ResultView, x: int, y: int) -> str:
        """The result's colour ("#rrggbb") at image pixel (x, y): the colour a new hint
        there starts from. Read from the full-size result, which is exact where the page's
        JPEG is not; for a 1 MP photo that takes a hundredth of a second."""
        try:
            with Image.open(view.download) as result:
                red, green, blue = result.getpixel((int(x), int(y)))[:3]
        except OSError:
            raise _expired_result() from None
        except IndexError:  # from getpixel
            raise ColorcnnError(
                f"point ({x}, {y}) is outside the {view.image_size[0]}x{view.image_size[1]} "
                "px image"
            ) from None
        return f"#{red:02x}{green:02x}{blue:02x}"

    def mark_hints(
        self, view: ResultView, hints: Sequence[Hint], selected: int | None = None
    ) -> Path:
        """The page's colour picture with `hints` marked on it (draw_hint_markers), written
        beside it (without hints, the picture itself). Choosing another point marks the
        same result again; the result itself is not written again."""
        if not hints:
            return view.colour_file
        target = view.colour_file.with_name("hints.jpg")
        points = [(*view.shown_point(hint.x, hint.y), hint.hex) for hint in hints]
        try:
            with Image.open(view.colour_file) as picture:
                marked = draw_hint_markers(picture, points, selected)
            with atomic_path(target) as temporary:
                marked.save(temporary, format="JPEG", quality=95, subsampling=0)
        except FileNotFoundError:
            raise _expired_result() from None
        except (OSError, ValueError) as error:
            raise ColorcnnError(f"cannot write the page's picture ({error})") from None
        return target

    def _for_display(
        self, upload: _DecodedUpload, colour: Image.Image
    ) -> tuple[Image.Image, Image.Image]:
        """The grey the network saw and the result, scaled down to at most
        `display_pixels`. A grey upload's grey picture is made once: it is the same
        whatever the result."""
        loaded = upload.image
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
            if upload.grey is None:
                grey = _on_white(loaded.to_uint8_pil(), loaded.alpha)
                upload.grey = (
                    grey if grey.size == size else grey.resize(size, Image.Resampling.LANCZOS)
                )
            return upload.grey, shown
        # A colour upload: the result's own lightness without its chroma.
        lightness = rgb_to_lab(from_uint8(shown))[:, :1]
        grey = join_lightness_and_ab(lightness, torch.zeros_like(lightness).expand(-1, 2, -1, -1))
        return Image.fromarray(to_uint8(grey[0])), shown

    def _new_result_folder(self) -> Path:
        folder = self.work_dir / uuid.uuid4().hex
        with self._results_lock:  # listed first, so that a failed write is pruned too
            self._recent.append(folder)
            while len(self._recent) > KEPT_RESULTS:
                shutil.rmtree(self._recent.popleft(), ignore_errors=True)
        return folder

    def _keep(
        self,
        folder: Path,
        colour: Image.Image,
        grey: Image.Image,
        shown: Image.Image,
        stem: str,
        upload: _DecodedUpload,
    ) -> tuple[Path, tuple[Path, Path]]:
        """Write the full-size PNG and the page's two pictures into `folder`. Writes are
        atomic: a download never sees half a file. The page's pictures are JPEG at
        quality 95 without chroma subsampling: about 30 times faster to encode than PNG,
        which the page would otherwise make of them at every request. A grey upload's
        grey picture is written once and linked into later results' folders."""
        download = folder / f"{stem}-colorized.png"
        save_image(colour, download, fast=True)
        grey_file, colour_file = folder / "grey.jpg", folder / "colour.jpg"
        linked = False
        if grey is upload.grey and upload.grey_file is not None:
            try:
                os.link(upload.grey_file, grey_file)
                linked = True
            except OSError:  # gone with its folder, or a file system without links
                pass
        pictures = [(shown, colour_file)] if linked else [(grey, grey_file), (shown, colour_file)]
        for picture, target in pictures:
            try:
                with atomic_path(target) as temporary:
                    picture.save(temporary, format="JPEG", quality=95, subsampling=0)
            except (OSError, ValueError) as error:
                raise ColorcnnError(f"cannot write the page's picture ({error})") from None
        if grey is upload.grey:
            upload.grey_file = grey_file
        return download, (grey_file, colour_file)

    def close(self) -> None:
        if self._owns_work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)


def _expired_result() -> ColorcnnError:
    return ColorcnnError(
        "the result on the page is no longer kept on the server; colourize the photo again"
    )

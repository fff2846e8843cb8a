"""Colourize videos frame by frame, streamed: decode one frame, colourize it, encode it,
go on, so that memory stays bounded whatever the length. Frames, rate, size, timing and
the audio (copied, not re-encoded) are kept; only the chroma comes from the network, and
with `stabilize` it is smoothed over time so that colours do not flicker between frames.

Videos are read and written with PyAV (BSD-3-Clause), whose wheels bundle FFmpeg: the
optional extra `pip install "colorcnn[video]"`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from colorcnn.color.spaces import rgb_lightness
from colorcnn.errors import ColorcnnError, SettingError, first_line
from colorcnn.files import VIDEO_SUFFIXES, atomic_path
from colorcnn.inference.batch import Job, Summary, is_video, run_jobs
from colorcnn.inference.colorize import DEFAULT_MODEL, Colorizer
from colorcnn.inference.images import LoadedImage, from_array

__all__ = [
    "VIDEO_SUFFIXES", "VideoInfo", "VideoSummary", "colorize_video", "is_video",
    "ensure_video_support", "probe_video", "process_videos",
]  # fmt: skip

if TYPE_CHECKING:
    from colorcnn.inference.stabilize import ChromaStabilizer

# Containers written, by suffix: all hold H.264 and the usual audio codecs.
_OUTPUT_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}

# H.264 (libx264) at constant quality: CRF 18 is visually near-lossless; "veryfast" keeps
# encoding a small share of each frame's time on 2 cores (docs in the README's Video).
VIDEO_CODEC = "libx264"
DEFAULT_QUALITY = 18  # x264's CRF: 0 lossless, 51 worst; 6 more about halves the size
DEFAULT_PRESET = "veryfast"
# 4:2:0 is what every player plays, and it needs even sides; odd sides are written in full
# 4:4:4 instead, so that the size stays exactly the input's.
_PIXEL_FORMAT = "yuv420p"
_ODD_PIXEL_FORMAT = "yuv444p"
# A grey frame's R, G and B differ only by the decoder's rounding; checked every
# _COLOUR_STRIDE-th pixel, which is enough to tell a colour film from a grey one.
_GREY_TOLERANCE = 2
_COLOUR_STRIDE = 4


def ensure_video_support() -> None:
    """Nothing where PyAV is installed; else one line that says how to install it."""
    _av()


def _av() -> Any:
    """The PyAV module, or one line that says how to install it."""
    try:
        import av
    except ImportError:
        raise ColorcnnError(
            'colourizing videos needs PyAV; install it with: pip install "colorcnn[video]"'
        ) from None
    return av


@dataclass
class VideoInfo:
    """What `probe_video` finds in a file."""

    width: int
    height: int
    fps: Fraction | None  # the average frame rate, where the container says
    frames: int  # 0 where the container does not say
    seconds: float | None
    has_audio: bool


@dataclass
class VideoSummary:
    """What `colorize_video` did."""

    source: Path
    target: Path
    frames: int
    seconds: float  # wall-clock time of the whole run
    fps: float  # frames colourized per second of wall-clock time
    width: int
    height: int
    had_audio: bool  # the input had an audio stream, copied into the output
    had_colour: bool  # some frame carried colour, which was ignored (made grey first)
    stabilized: bool  # the chroma was smoothed over time


def _open_input(av: Any, source: Path) -> Any:
    if source.is_dir():
        raise ColorcnnError(f"{source} is a folder, not a video")
    if not source.exists():
        raise ColorcnnError(f"{source} does not exist; expected a video file such as .mp4")
    try:
        container = av.open(str(source), "r")
    except PermissionError:
        raise ColorcnnError(f"{source} cannot be read (permission denied)") from None
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError):
        raise ColorcnnError(
            f"{source} has no video stream; expected a video file such as .mp4"
        ) from None
    if not container.streams.video:
        container.close()
        raise ColorcnnError(f"{source} has no video stream; expected a video file such as .mp4")
    return container


def probe_video(source: str | Path) -> VideoInfo:
    """Open `source` by its container (not its suffix) and describe its first video stream;
    a file that is not a video, or holds no video stream, is one clear ColorcnnError."""
    av = _av()
    source = Path(source)
    with _open_input(av, source) as container:
        stream = container.streams.video[0]
        seconds = None
        if stream.duration is not None and stream.time_base is not None:
            seconds = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            seconds = container.duration / av.time_base
        return VideoInfo(
            stream.codec_context.width,
            stream.codec_context.height,
            stream.average_rate,
            stream.frames or 0,
            seconds,
            bool(container.streams.audio),
        )


def _loaded_frame(rgb: np.ndarray) -> LoadedImage:
    """A decoded RGB frame (H, W, 3) uint8 as the Colorizer takes it: one grey plane when R,
    G and B agree (the lightness is then a table lookup, not a Lab conversion), else RGB,
    whose own lightness is used and whose colour is ignored."""
    sample = rgb[::_COLOUR_STRIDE, ::_COLOUR_STRIDE].astype(np.int16)
    if (
        np.abs(sample[..., 0] - sample[..., 1]).max() > _GREY_TOLERANCE
        or np.abs(sample[..., 1] - sample[..., 2]).max() > _GREY_TOLERANCE
    ):
        return from_array(rgb)
    return from_array(rgb[..., 1])  # green carries most of the luma: the least rounding


def _new_stabilizer(stabilize: bool) -> ChromaStabilizer | None:
    if not stabilize:
        return None
    try:  # here, not at the top: it needs OpenCV, which only video colourizing does
        from colorcnn.inference.stabilize import ChromaStabilizer
    except ModuleNotFoundError as error:
        raise ColorcnnError(
            f"steadying video colour needs {error.name}; install it with: "
            'pip install "colorcnn[video]"'
        ) from None
    return ChromaStabilizer()  # starts afresh


def _check_target(target: Path) -> str:
    suffix = target.suffix.lower()
    if suffix not in _OUTPUT_FORMATS:
        raise SettingError(
            f"`target` {target} is not a video file name; expected one ending in "
            f"{', '.join(sorted(_OUTPUT_FORMATS))}"
        )
    return _OUTPUT_FORMATS[suffix]


def colorize_video(
    source: str | Path,
    target: str | Path,
    model: str | Path | Colorizer = DEFAULT_MODEL,
    *,
    size: int | None = None,
    temperature: float | None = None,
    stabilize: bool = True,
    quality: int = DEFAULT_QUALITY,
    preset: str = DEFAULT_PRESET,
    show_progress: bool = True,
) -> VideoSummary:
    """Colourize the video `source` into `target` (.mp4, .m4v, .mov or .mkv), frame by
    frame at the working size `size` (default: the model's own).

    The output has the input's frames, frame rate, size and timing, and its audio copied
    as it is; the lightness of each frame is the input's own (a colour input is made grey
    first). Video is H.264 at constant quality `quality` (x264's CRF, 0 to 51, lower is
    better) with the x264 `preset`; `stabilize` smooths the chroma over time. The output is
    written to a temporary file beside `target` and renamed at the end: a failed or
    interrupted run leaves no output file.
    """
    av = _av()
    source, target = Path(source), Path(target)
    container_format = _check_target(target)
    if not 0 <= quality <= 51:
        raise SettingError(f"`quality` must be an x264 CRF from 0 to 51, got {quality}")
    colorizer = model if isinstance(model, Colorizer) else Colorizer.load(model)
    size = colorizer.working_size if size is None else size
    colorizer.check_size(size)
    colorizer.check_temperature(temperature)
    stabilizer = _new_stabilizer(stabilize)
    started = time.perf_counter()
    with _open_input(av, source) as reader:
        video_in = reader.streams.video[0]
        audio_in = reader.streams.audio[0] if reader.streams.audio else None
        # Decode on this thread: FFmpeg's frame threads, each holding a frame in flight,
        # fought torch's threads for the 2 cores and made the network ~15x slower
        # (1457 vs 30 ms a 1280x720 frame); decoding itself takes ~3 ms a frame.
        video_in.thread_type = "NONE"
        width, height = video_in.codec_context.width, video_in.codec_context.height
        rate = video_in.average_rate or video_in.guessed_rate or Fraction(25)
        time_base = video_in.time_base or 1 / rate
        had_colour = False
        frames = 0
        progress = tqdm(
            total=video_in.frames or None,
            desc=f"Colourizing {source.name}",
            unit="frame",
            disable=not show_progress,
        )
        try:
            with (
                atomic_path(target) as tmp_path,
                av.open(str(tmp_path), "w", format=container_format) as writer,
            ):
                video_out = writer.add_stream(VIDEO_CODEC, rate=rate)
                video_out.width, video_out.height = width, height
                even = width % 2 == 0 and height % 2 == 0
                video_out.pix_fmt = _PIXEL_FORMAT if even else _ODD_PIXEL_FORMAT
                video_out.time_base = time_base
                video_out.codec_context.time_base = time_base
                video_out.options = {"crf": str(quality), "preset": preset}
                audio_out = writer.add_stream_from_template(audio_in) if audio_in else None

                def write(frame: Any) -> None:
                    writer.mux(video_out.encode(frame))

                streams = [video_in] + ([audio_in] if audio_in else [])
                for packet in reader.demux(streams):
                    if packet.stream is audio_in:
                        if packet.dts is not None:  # the demuxer's final flush packet
                            packet.stream = audio_out
                            writer.mux(packet)
                        continue
                    for frame in packet.decode():
                        rgb = frame.to_ndarray(format="rgb24")  # (H, W, 3)
                        loaded = _loaded_frame(rgb)
                        had_colour |= loaded.was_colour
                        coloured = _colorize_frame(colorizer, loaded, size, temperature, stabilizer)
                        out = av.VideoFrame.from_ndarray(coloured, format="rgb24")
                        out.pts = frame.pts if frame.pts is not None else frames
                        out.time_base = time_base
                        write(out)
                        frames += 1
                        progress.update()
                if frames == 0:  # nothing to write: leave no output file
                    raise ColorcnnError(f"{source} has a video stream without frames")
                write(None)  # flush the encoder
        except av.FFmpegError as error:
            raise ColorcnnError(f"cannot colourize {source} ({first_line(error)})") from None
        finally:
            progress.close()
    seconds = time.perf_counter() - started
    return VideoSummary(
        source, target, frames, seconds, frames / max(seconds, 1e-9), width, height,
        audio_in is not None, had_colour, stabilizer is not None,
    )  # fmt: skip


def _colorize_frame(
    colorizer: Colorizer,
    loaded: LoadedImage,
    size: int,
    temperature: float | None,
    stabilizer: ChromaStabilizer | None,
) -> np.ndarray:
    """One frame colourized: 8-bit RGB (H, W, 3)."""
    small = colorizer.working_picture(loaded, size)  # made once: for the chroma and the L
    ab = colorizer.predict_ab_from(small, temperature)  # (1, 2, h, w)
    if stabilizer is not None:
        ab = stabilizer.step(rgb_lightness(small), ab)
    return np.asarray(colorizer.join_chroma(loaded, ab))


def process_videos(
    jobs: list[Job],
    colorizer: Colorizer,
    *,
    size: int | None = None,
    temperature: float | None = None,
    stabilize: bool = True,
    overwrite: bool = False,
    show_progress: bool = True,
    report: Callable[[str], None] = tqdm.write,
) -> Summary:
    """Colourize each video job in turn, through `run_jobs`: one that fails is reported in
    one line and the rest go on; nothing is overwritten without `overwrite`."""

    def colorize_job(job: Job) -> bool:
        done = colorize_video(
            job.source, job.target, colorizer, size=size, temperature=temperature,
            stabilize=stabilize, show_progress=show_progress,
        )  # fmt: skip
        return done.had_colour

    return run_jobs(jobs, colorize_job, overwrite=overwrite, report=report)

"""Colourizing videos: frames, rate, size, timing and sound kept, the lightness the input's,
nothing left behind by a failed run, and the command line's handling of videos."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from colorcnn.cli import main
from colorcnn.color.spaces import rgb_to_lab
from colorcnn.inference import video as video_module
from colorcnn.inference.colorize import Colorizer
from colorcnn.inference.video import colorize_video, probe_video

av = pytest.importorskip("av", reason='PyAV is not installed (pip install "colorcnn[video]")')

TINY = "cifar-horse-unet"  # a tiny course model: fast enough for many frames
FPS = 12
FRAMES = 24


def make_clip(
    path: Path,
    width: int = 64,
    height: int = 48,
    *,
    frames: int = FRAMES,
    audio: str | None = None,
    colour: bool = False,
    video: bool = True,
) -> Path:
    """A clip of a bright square moving over a gradient, optionally with a sine tone."""
    even = width % 2 == 0 and height % 2 == 0
    with av.open(str(path), "w") as container:
        if video:
            stream = container.add_stream("libx264", rate=FPS)
            stream.width, stream.height = width, height
            stream.pix_fmt = "yuv420p" if even else "yuv444p"
            stream.options = {"crf": "10"}
        if audio:
            sound = container.add_stream(audio, rate=44100)
            sound.layout = "mono"
        ys, xs = np.mgrid[0:height, 0:width]
        for index in range(frames if video else 0):
            grey = (40 + 120 * xs / width + 40 * ys / height).astype(np.uint8)
            rgb = np.repeat(grey[..., None], 3, axis=2)
            left = (index * 2) % max(1, width - 16)
            rgb[10:26, left : left + 16] = (200, 60, 40) if colour else 210
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            container.mux(stream.encode(frame))
        if video:
            container.mux(stream.encode(None))
        if audio:
            samples = 44100 * frames // FPS
            tone = (0.2 * np.sin(np.arange(samples) * 2 * np.pi * 440 / 44100)).astype(np.float32)
            block = sound.codec_context.frame_size or 1024
            for start in range(0, samples, block):
                chunk = tone[None, start : start + block]
                frame = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
                frame.sample_rate = 44100
                frame.pts = start
                container.mux(sound.encode(frame))
            container.mux(sound.encode(None))
    return path


def read_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def lightness(rgb: np.ndarray) -> np.ndarray:
    import torch

    pixels = torch.from_numpy(rgb.astype(np.float32) / 255).permute(2, 0, 1)[None]
    return rgb_to_lab(pixels)[0, 0].numpy()


@pytest.fixture(scope="module")
def tiny() -> Colorizer:
    return Colorizer.load(TINY)


@pytest.mark.parametrize(("width", "height", "audio"), [(64, 48, "aac"), (63, 47, None)])
def test_video_keeps_frames_rate_size_duration_and_sound(tmp_path, tiny, width, height, audio):
    source = make_clip(tmp_path / "clip.mp4", width, height, audio=audio)
    target = tmp_path / "out" / "clip_colour.mp4"
    summary = colorize_video(source, target, tiny, size=32, show_progress=False)
    before, after = probe_video(source), probe_video(target)
    assert summary.frames == FRAMES and summary.had_audio == (audio is not None)
    assert (after.width, after.height) == (width, height)
    assert after.fps == Fraction(FPS)
    assert after.has_audio == (audio is not None)
    frames_in, frames_out = read_frames(source), read_frames(target)
    assert len(frames_out) == len(frames_in) == FRAMES
    assert after.seconds == pytest.approx(before.seconds, abs=1 / FPS)
    for grey, coloured in zip(frames_in, frames_out, strict=True):
        # The lightness is the input's, up to the codec's loss and gamut clipping.
        assert np.median(np.abs(lightness(coloured) - lightness(grey))) < 2.5
    assert list(target.parent.iterdir()) == [target]  # no temporary file left


def test_audio_is_copied_not_reencoded(tmp_path, tiny):
    source = make_clip(tmp_path / "clip.mkv", audio="mp3")
    target = tmp_path / "clip.mkv.mp4"
    colorize_video(source, target, tiny, size=32, show_progress=False)

    def audio_packets(path: Path) -> list[bytes]:
        with av.open(str(path)) as container:
            return [bytes(p) for p in container.demux(audio=0) if p.size]

    assert audio_packets(target) == audio_packets(source)


def test_colour_input_is_made_grey_first(tmp_path, tiny):
    colour = make_clip(tmp_path / "colour.mp4", colour=True, frames=6)
    out = tmp_path / "colour_out.mp4"
    summary = colorize_video(colour, out, tiny, size=32, stabilize=False, show_progress=False)
    assert summary.had_colour
    for frame_in, frame_out in zip(read_frames(colour), read_frames(out), strict=True):
        # The output's lightness is the colour frame's own; its chroma is the network's,
        # not the input's red square.
        assert np.median(np.abs(lightness(frame_out) - lightness(frame_in))) < 2.5
        square_in = frame_in[12:24, :].astype(int)
        square_out = frame_out[12:24, :].astype(int)
        assert np.abs(square_out - square_in).max() > 40


def test_interrupted_run_leaves_no_output(tmp_path, tiny, monkeypatch):
    source = make_clip(tmp_path / "clip.mp4", frames=8)
    calls = []
    original = video_module._colorize_frame

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(video_module, "_colorize_frame", interrupted)
    folder = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        colorize_video(source, folder / "clip.mp4", tiny, size=32, show_progress=False)
    assert not any(folder.iterdir())


def test_not_a_video_and_audio_only_are_one_line(tmp_path, capsys):
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(b"this is not a video at all" * 20)
    sound_only = make_clip(tmp_path / "sound.mp4", audio="aac", video=False)
    for path in (fake, sound_only):
        status = main(["colorize", str(path), "-m", TINY, "--size", "32", "-o",
                       str(tmp_path / "out.mp4"), "--no-progress"])  # fmt: skip
        err = capsys.readouterr().err
        assert status == 1
        failures = [line for line in err.splitlines() if line.startswith("failed")]
        assert failures == [
            f"failed {path}: {path} has no video stream; expected a video file such as .mp4"
        ]
        assert not (tmp_path / "out.mp4").exists()


def test_folder_of_photos_and_a_video(tmp_path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    make_clip(inputs / "film.mov", frames=6, audio="aac")
    Image.fromarray(np.full((40, 30), 128, np.uint8)).save(inputs / "photo.png")
    out = tmp_path / "out"
    status = main(["colorize", str(inputs), "-m", TINY, "--size", "32", "-o", str(out),
                   "--no-stabilize", "--no-progress"])  # fmt: skip
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert sorted(p.name for p in out.iterdir()) == ["film.mp4", "photo.png"]
    assert "1 of 1 image(s) and 1 of 1 video(s)" in captured.out
    assert len(read_frames(out / "film.mp4")) == 6


def test_hints_are_refused_for_videos(tmp_path, capsys):
    source = make_clip(tmp_path / "clip.mp4", frames=2)
    status = main(["colorize", str(source), "--hint", "10,10,#c03020", "-o",
                   str(tmp_path / "out.mp4")])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1
    assert err == [
        f"colorcnn: error: --hints and --hint apply to photos, not to videos such as {source}; "
        "colourize videos without them"
    ]


def test_missing_pyav_is_one_line(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_av(name, *args, **kwargs):
        if name == "av":
            raise ImportError("no av")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_av)
    with pytest.raises(video_module.ColorcnnError, match=r'pip install "colorcnn\[video\]"'):
        video_module.ensure_video_support()

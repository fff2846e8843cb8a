"""The web demo's video clips, through its service: the clip comes back coloured with its
frames and size, into the service's own results folder, and clips over a limit, or files
that are no video, are refused in one line before a frame is colourized. The page's Video
tab is driven in tests/test_demo_browser.py. Needs PyAV (the video extra)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from colorcnn.demo import DemoLimits, DemoService
from colorcnn.errors import ColorcnnError

TINY = "cifar-horse-unet"  # a tiny course model: a clip takes a fraction of a second
CLIP_FRAMES, CLIP_WIDTH, CLIP_HEIGHT, CLIP_FPS = 12, 64, 48, 6  # 2 s


def _av():
    return pytest.importorskip("av", reason='PyAV is not installed (pip install "colorcnn[video]")')


def write_clip(path: Path, frames: int = CLIP_FRAMES) -> Path:
    """A grey clip of a bright square moving over a gradient, CLIP_FPS frames a second;
    skips the test where PyAV is missing."""
    av = _av()
    ys, xs = np.mgrid[0:CLIP_HEIGHT, 0:CLIP_WIDTH]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=CLIP_FPS)
        stream.width, stream.height, stream.pix_fmt = CLIP_WIDTH, CLIP_HEIGHT, "yuv420p"
        for index in range(frames):
            grey = (40 + 120 * xs / CLIP_WIDTH + 40 * ys / CLIP_HEIGHT).astype(np.uint8)
            grey[10:26, index * 3 : index * 3 + 16] = 210
            frame = av.VideoFrame.from_ndarray(np.repeat(grey[..., None], 3, axis=2), "rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def _frames(path: Path) -> list[np.ndarray]:
    with _av().open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def _service(tmp_path: Path, **limits) -> DemoService:
    return DemoService(TINY, DemoLimits(**limits), work_dir=tmp_path / "results")


@pytest.fixture
def service(tmp_path: Path):
    demo = _service(tmp_path)
    yield demo
    demo.close()


@pytest.mark.parametrize("stabilize", [True, False])
def test_a_clip_comes_back_coloured_with_its_frames_and_size(
    service: DemoService, tmp_path: Path, stabilize: bool
):
    clip = write_clip(tmp_path / "clip.mp4")
    result = service.colorize_video_upload(clip, TINY, stabilize=stabilize)
    assert result.video.suffix == ".mp4" and result.video.is_relative_to(service.work_dir)
    frames = _frames(result.video)
    assert len(frames) == result.frames == CLIP_FRAMES
    assert all(frame.shape == (CLIP_HEIGHT, CLIP_WIDTH, 3) for frame in frames)
    assert (result.width, result.height) == (CLIP_WIDTH, CLIP_HEIGHT)
    assert "Colourized clip.mp4 (12 frames, 64x48 px, 2.0 s) with unet" in result.message
    steadiness = "colours kept steady" if stabilize else "each frame coloured alone"
    assert steadiness in result.message
    assert str(tmp_path) not in result.message


def test_the_same_cached_model_serves_photos_and_clips(service: DemoService, tmp_path: Path):
    before = service.colorizer(TINY)
    service.colorize_video_upload(write_clip(tmp_path / "clip.mp4"))  # the default model
    assert service.colorizer(TINY) is before


def _refusal(service: DemoService, path: Path) -> str:
    with pytest.raises(ColorcnnError) as refused:
        service.colorize_video_upload(path)
    message = str(refused.value)
    assert "\n" not in message and str(path.parent) not in message
    assert not list(service.work_dir.rglob("*.mp4*"))  # nothing written, not even begun
    return message


def test_a_clip_over_the_length_limit_is_refused_in_one_line(tmp_path: Path):
    clip = write_clip(tmp_path / "long.mp4")
    service = _service(tmp_path, max_video_seconds=1.5)
    try:
        message = _refusal(service, clip)
    finally:
        service.close()
    assert message == "long.mp4 lasts 2.0 s; this demo accepts clips of up to 1.5 s"


def test_a_clip_over_the_size_or_pixel_limit_is_refused_in_one_line(tmp_path: Path):
    clip = write_clip(tmp_path / "clip.mp4")
    service = _service(tmp_path, max_upload_mb=0.0001, max_pixels=3000)
    try:
        assert "this demo accepts files up to 0.0001 MB" in _refusal(service, clip)
    finally:
        service.close()
    service = _service(tmp_path, max_pixels=3000)
    try:
        message = _refusal(service, clip)
    finally:
        service.close()
    assert message == (
        "clip.mp4 has frames of 64x48 px (3,072 px); this demo accepts at most 3,000 px a frame"
    )


def test_a_file_that_is_not_a_video_is_refused_in_one_line(service: DemoService, tmp_path: Path):
    _av()
    fake = tmp_path / "holiday.mp4"
    fake.write_text("these are notes, not a film")
    assert _refusal(service, fake) == (
        "holiday.mp4 has no video stream; expected a video file such as .mp4"
    )
    notes = tmp_path / "notes.txt"
    notes.write_text("not a film either")
    assert _refusal(service, notes).startswith("notes.txt is not a supported video file")


def test_the_video_length_limit_must_be_positive():
    with pytest.raises(ColorcnnError, match="max video length must be a positive number"):
        DemoLimits(max_video_seconds=0)

"""The steadiness measures of colourized video, on synthetic sequences with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from colorcnn.evaluation.video import (
    cdc,
    static_chroma_flicker,
    truth_flows,
    visible_mask,
    warping_error,
)


def textured_frame(height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    generator = np.random.default_rng(seed)
    return generator.integers(0, 256, (height, width, 3), dtype=np.uint8)


def smooth_scene(height: int, width: int) -> np.ndarray:
    """A smooth colourful picture (H, W, 3) uint8, which optical flow can follow."""
    rows, columns = np.mgrid[0:height, 0:width].astype(np.float32)
    red = 128 + 100 * np.sin(columns / 9.0) * np.cos(rows / 13.0)
    green = 128 + 90 * np.cos(columns / 7.0 + rows / 11.0)
    blue = 128 + 80 * np.sin((columns + rows) / 10.0)
    return np.stack((red, green, blue), axis=-1).round().astype(np.uint8)


def test_identical_frames_score_zero():
    frames = [textured_frame()] * 6
    assert cdc(frames) == pytest.approx(0.0, abs=1e-12)
    assert static_chroma_flicker(frames) == 0.0
    assert warping_error(frames) == pytest.approx(0.0, abs=1e-9)


def test_flipping_chroma_scores_more_than_steady_chroma():
    steady = [textured_frame(seed=1)] * 6
    flipped = steady[0][..., [2, 1, 0]]  # red and blue swap: same grey-ish, other chroma
    flicker = [steady[0], flipped] * 3
    assert cdc(flicker) > cdc(steady) + 1e-3
    assert static_chroma_flicker(flicker) > static_chroma_flicker(steady) + 1.0


def test_cdc_is_a_js_divergence_of_histograms():
    black = np.zeros((4, 4, 3), np.uint8)
    white = np.full((4, 4, 3), 255, np.uint8)
    # Disjoint histograms: JS divergence ln 2 for every channel and every gap of 1 and 2.
    frames = [black, white, black, white, black]
    gap_one, gap_two, gap_four = np.log(2), 0.0, 0.0
    assert cdc(frames) == pytest.approx((gap_one + gap_two + gap_four) / 3)
    assert cdc(frames, dilations=(1,)) == pytest.approx(np.log(2))


def test_pure_translation_with_exact_flow_has_no_warping_error():
    scene = smooth_scene(80, 120)
    shift = 3
    frames = [scene[:, step * shift : step * shift + 80] for step in range(5)]
    forward = np.zeros((80, 80, 2), np.float32)
    forward[..., 0] = -shift  # the content moves left by `shift` px each frame
    backward = -forward
    flows = [(forward, backward)] * 4
    assert warping_error(frames, flows=flows) == pytest.approx(0.0, abs=1e-10)
    # A frame flashing in colour breaks the exact fit.
    frames[2] = frames[2][..., [2, 1, 0]].copy()
    assert warping_error(frames, flows=flows) > 1e-3


def test_estimated_flow_follows_a_translation():
    scene = smooth_scene(96, 160)
    frames = [np.ascontiguousarray(scene[:, step * 2 : step * 2 + 128]) for step in range(4)]
    assert warping_error(frames, truth=frames) < 1e-3
    flows = truth_flows(frames)
    forward, backward = flows[0]
    centre = forward[20:-20, 20:-20]
    assert np.abs(centre[..., 0] + 2).mean() < 0.3
    assert visible_mask(forward, backward)[:, :-4].mean() > 0.9


def test_pixels_whose_lightness_changes_are_not_counted_as_flicker():
    dark_red = np.zeros((8, 8, 3), np.uint8)
    dark_red[..., 0] = 120
    light_blue = np.zeros((8, 8, 3), np.uint8)
    light_blue[..., 2] = 255
    light_blue[..., :2] = 160
    assert static_chroma_flicker([dark_red, light_blue, dark_red]) == 0.0
    half = dark_red.copy()
    half[:, 4:] = dark_red[:, 4:, [1, 0, 2]]  # green of another lightness: not counted
    half[:4] = light_blue[:4]
    assert static_chroma_flicker([dark_red, half]) == 0.0


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="at least 2"):
        cdc([textured_frame()])
    with pytest.raises(TypeError, match="uint8"):
        cdc([textured_frame().astype(np.float32)] * 2)
    with pytest.raises(ValueError, match="shape"):
        cdc([textured_frame(), textured_frame(height=10)])


def test_warped_flicker_does_not_count_a_pan_of_the_truth():
    scene = smooth_scene(80, 140)
    shift = 3
    frames = [np.ascontiguousarray(scene[:, step * shift : step * shift + 80]) for step in range(5)]
    forward = np.zeros((80, 80, 2), np.float32)
    forward[..., 0] = -shift
    flows = [(forward, -forward)] * 4
    assert static_chroma_flicker(frames) > 0.5  # texture moving past a fixed pixel
    assert static_chroma_flicker(frames, flows=flows) == pytest.approx(0.0, abs=1e-3)

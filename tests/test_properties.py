"""Property-based tests: colour conversions, ab quantization, and colourizing any image."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from colorcnn.color.abbins import BIN_STEP, ABBins
from colorcnn.color.spaces import grey_lightness, lab_lightness, lab_to_rgb, rgb_to_lab
from colorcnn.inference import Colorizer
from colorcnn.inference.images import from_pil

unit_floats = st.floats(0.0, 1.0, allow_nan=False, width=32)
rgb_images = st.tuples(st.integers(1, 6), st.integers(1, 9), st.integers(1, 9)).flatmap(
    lambda shape: arrays(np.float32, (shape[0], 3, shape[1], shape[2]), elements=unit_floats)
)


@given(rgb_images)
@settings(max_examples=60, deadline=None)
def test_lab_ranges_and_round_trip(rgb: np.ndarray) -> None:
    tensor = torch.from_numpy(rgb)
    lab = rgb_to_lab(tensor)
    assert torch.isfinite(lab).all()
    assert lab[:, 0].min() >= -1e-3 and lab[:, 0].max() <= 100 + 1e-3
    assert lab[:, 1:].abs().max() <= 128
    back = lab_to_rgb(lab)
    assert torch.isfinite(back).all() and back.min() >= 0 and back.max() <= 1
    assert torch.allclose(back, tensor, atol=2e-3)


@given(arrays(np.float32, (1, 1, 4, 7), elements=unit_floats))
@settings(max_examples=60, deadline=None)
def test_grey_lightness_agrees_with_lab_and_keeps_order(grey: np.ndarray) -> None:
    tensor = torch.from_numpy(grey)
    lightness = grey_lightness(tensor)
    assert torch.allclose(lightness, lab_lightness(tensor.expand(1, 3, 4, 7)), atol=0.01)
    order = torch.argsort(tensor.flatten())
    assert (lightness.flatten()[order].diff() >= -1e-4).all()


BINS = ABBins.in_gamut()


@given(rgb_images)
@settings(max_examples=40, deadline=None)
def test_every_in_gamut_colour_quantizes_to_a_nearby_bin(rgb: np.ndarray) -> None:
    ab = rgb_to_lab(torch.from_numpy(rgb))[:, 1:]
    nearest = BINS.nearest(ab)  # (N, H, W)
    centres = BINS.centres[nearest].permute(0, 3, 1, 2)  # (N, 2, H, W)
    # Gamut pixels lie inside the bins' hull: no farther than a half diagonal, plus slack
    # for colours at its rim.
    assert (centres - ab).norm(dim=1).max() <= BIN_STEP * 2**0.5 / 2 + BIN_STEP


@given(st.integers(0, BINS.num_bins - 1), st.floats(0.01, 1.0))
@settings(max_examples=40, deadline=None)
def test_decoding_a_confident_prediction_returns_its_bin_centre(index: int, temperature) -> None:
    logits = torch.full((1, BINS.num_bins, 1, 1), -30.0)
    logits[0, index] = 30.0
    for mode in ("argmax", "mean", "annealed"):
        ab = BINS.decode(logits, mode, temperature)
        assert torch.allclose(ab[0, :, 0, 0], BINS.centres[index], atol=1e-3), mode


@pytest.fixture(scope="module")
def colorizer() -> Colorizer:
    return Colorizer.load("cifar-horse-unet")


MODES = ("L", "RGB", "RGBA", "LA", "P", "I;16", "CMYK", "1")


@given(st.integers(1, 70), st.integers(1, 70), st.sampled_from(MODES), st.integers(0, 2**31))
@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_colorize_keeps_the_size_of_any_image(colorizer, width, height, mode, seed) -> None:
    pixels = np.random.RandomState(seed % 2**31).randint(0, 256, (height, width, 3), np.uint8)
    image = Image.fromarray(pixels).convert(mode)
    result = colorizer.colorize(image, 32)
    assert result.size == (width, height)
    assert result.mode == ("RGBA" if mode in ("RGBA", "LA") else "RGB")
    # The output keeps the lightness of the picture as read, to rounding and gamut.
    pixels = torch.from_numpy(from_pil(image).pixels).permute(2, 0, 1)[None].expand(-1, 3, -1, -1)
    shown = torch.from_numpy(np.asarray(result.convert("RGB"), dtype=np.float32) / 255)
    difference = rgb_to_lab(shown.permute(2, 0, 1)[None])[0, 0] - rgb_to_lab(pixels)[0, 0]
    assert difference.abs().median() < 1.0

"""ChromaStabilizer: steadier chroma that follows motion and restarts at scene cuts."""

from __future__ import annotations

import pytest
import torch

from colorcnn.errors import SettingError
from colorcnn.inference.stabilize import ChromaStabilizer

HEIGHT, WIDTH = 64, 96


def lightness_scene(height: int, width: int, seed: int = 0) -> torch.Tensor:
    """A smooth textured lightness (1, 1, H, W) in L units, which optical flow can follow."""
    rows, columns = torch.meshgrid(
        torch.arange(height, dtype=torch.float32),
        torch.arange(width, dtype=torch.float32),
        indexing="ij",
    )
    phase = float(seed)
    lightness = (
        50 + 20 * torch.sin(columns / 5.0 + phase) * torch.cos(rows / 7.0)
        + 15 * torch.cos((columns + 2 * rows) / 9.0 - phase)
    )  # fmt: skip
    return lightness[None, None]


def chroma_scene(height: int, width: int) -> torch.Tensor:
    """Chroma (1, 2, H, W) that varies across the picture: left half red, right half blue."""
    ab = torch.zeros(1, 2, height, width)
    ab[:, 0, :, : width // 2] = 40.0
    ab[:, 1, :, width // 2 :] = -40.0
    return ab


def frame_flicker(chroma: list[torch.Tensor]) -> float:
    """Mean |ab| change between consecutive frames."""
    changes = [
        (after - before).abs().mean() for before, after in zip(chroma, chroma[1:], strict=False)
    ]
    return float(torch.stack(changes).mean())


def test_static_scene_with_noisy_chroma_is_steadied_and_keeps_its_mean():
    generator = torch.Generator().manual_seed(0)
    lightness = lightness_scene(HEIGHT, WIDTH)
    truth = chroma_scene(HEIGHT, WIDTH)
    noisy = [truth + 8 * torch.randn(truth.shape, generator=generator) for _ in range(30)]
    stabilizer = ChromaStabilizer()
    steady = [stabilizer.step(lightness, ab) for ab in noisy]
    assert frame_flicker(steady[5:]) < 0.5 * frame_flicker(noisy[5:])
    settled = torch.stack(steady[5:])  # (T, 1, 2, H, W)
    assert float(settled[..., 0, :, : WIDTH // 2].mean()) == pytest.approx(40.0, abs=1.0)
    assert float(settled[..., 1, :, WIDTH // 2 :].mean()) == pytest.approx(-40.0, abs=1.0)
    assert stabilizer.cuts == 0


def test_colour_follows_a_pan():
    wide_lightness = lightness_scene(HEIGHT, WIDTH + 40)
    wide_chroma = chroma_scene(HEIGHT, WIDTH + 40)
    stabilizer = ChromaStabilizer(memory=0.9)
    for step in range(10):
        window = slice(4 * step, 4 * step + WIDTH)
        output = stabilizer.step(wide_lightness[..., window], wide_chroma[..., window])
    # The colour edge moved 36 px; smoothed chroma that stayed put would smear it.
    expected = wide_chroma[..., window]
    inner = (slice(None), slice(None), slice(4, -4), slice(4, -8))
    assert float((output - expected)[inner].abs().mean()) < 2.0
    assert stabilizer.cuts == 0


def test_scene_cut_restarts_from_the_network_chroma():
    stabilizer = ChromaStabilizer()
    first = lightness_scene(HEIGHT, WIDTH, seed=0)
    for _ in range(5):
        stabilizer.step(first, chroma_scene(HEIGHT, WIDTH))
    other_lightness = lightness_scene(HEIGHT, WIDTH, seed=3)  # another shot
    other_chroma = torch.full((1, 2, HEIGHT, WIDTH), -25.0)
    output = stabilizer.step(other_lightness, other_chroma)
    assert stabilizer.cuts == 1
    assert torch.equal(output, other_chroma)


def test_reset_and_first_frame_give_the_network_chroma():
    stabilizer = ChromaStabilizer()
    lightness = lightness_scene(HEIGHT, WIDTH)
    first = chroma_scene(HEIGHT, WIDTH)
    assert torch.equal(stabilizer.step(lightness, first), first)
    stabilizer.step(lightness, first + 10)
    stabilizer.reset()
    assert torch.equal(stabilizer.step(lightness, first + 5), first + 5)


def test_inputs_are_not_modified_and_dtype_is_kept():
    lightness = lightness_scene(HEIGHT, WIDTH).double()
    ab = chroma_scene(HEIGHT, WIDTH).double()
    kept_lightness, kept_ab = lightness.clone(), ab.clone()
    stabilizer = ChromaStabilizer()
    for shift in range(3):
        output = stabilizer.step(lightness, ab + shift)
    assert torch.equal(lightness, kept_lightness) and torch.equal(ab, kept_ab)
    assert output.dtype == torch.float64 and output.shape == ab.shape


def test_occluded_pixels_keep_their_own_chroma():
    stabilizer = ChromaStabilizer()
    lightness = lightness_scene(HEIGHT, WIDTH)
    stabilizer.step(lightness, chroma_scene(HEIGHT, WIDTH))
    covered = lightness.clone()
    covered[..., 20:40, 30:50] = 95.0  # a bright object enters
    new_chroma = chroma_scene(HEIGHT, WIDTH) + 20
    output = stabilizer.step(covered, new_chroma)
    assert torch.allclose(output[..., 24:36, 34:46], new_chroma[..., 24:36, 34:46])


def test_bad_settings_and_shapes_are_refused():
    with pytest.raises(SettingError, match="memory"):
        ChromaStabilizer(memory=1.0)
    with pytest.raises(SettingError, match="unknown stabilizer setting"):
        ChromaStabilizer(weight=0.5)
    with pytest.raises(SettingError, match="flow_preset"):
        ChromaStabilizer(flow_preset="slow")
    with pytest.raises(ValueError, match="ab"):
        ChromaStabilizer().step(torch.zeros(1, 1, 8, 8), torch.zeros(1, 2, 8, 9))
    with pytest.raises(ValueError, match="lightness"):
        ChromaStabilizer().step(torch.zeros(1, 8, 8), torch.zeros(1, 2, 8, 8))

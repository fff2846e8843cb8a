"""Colour spaces: rgb_to_lab / lab_to_rgb against scikit-image, round trips, L and ab helpers."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from skimage.color import rgb2lab

from colorcnn.color.spaces import (
    course_grey,
    grey_lightness,
    join_lightness_and_ab,
    lab_lightness,
    lab_to_rgb,
    replace_lightness,
    rgb_to_lab,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _skimage_lab(rgb: torch.Tensor) -> np.ndarray:
    """scikit-image's Lab of (N, 3, H, W) RGB, back in (N, 3, H, W) float64."""
    return rgb2lab(rgb.double().permute(0, 2, 3, 1).numpy()).transpose(0, 3, 1, 2)


def _pixel(r: float, g: float, b: float, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.tensor([r, g, b], dtype=dtype).view(1, 3, 1, 1)


@pytest.fixture
def random_rgb() -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.rand(3, 3, 8, 9, generator=generator, dtype=torch.float64)


# --- rgb_to_lab against scikit-image -------------------------------------------------------


def test_rgb_to_lab_matches_skimage_float64(random_rgb: torch.Tensor) -> None:
    lab = rgb_to_lab(random_rgb)
    assert lab.shape == random_rgb.shape
    np.testing.assert_allclose(lab.numpy(), _skimage_lab(random_rgb), atol=1e-6)


def test_rgb_to_lab_matches_skimage_float32(random_rgb: torch.Tensor) -> None:
    lab = rgb_to_lab(random_rgb.float())
    assert lab.dtype == torch.float32
    np.testing.assert_allclose(lab.double().numpy(), _skimage_lab(random_rgb), atol=1e-3)


@pytest.mark.parametrize(
    ("rgb", "expected"),
    [
        ((1.0, 1.0, 1.0), (100.0, 0.0, 0.0)),
        ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)),
        ((1.0, 0.0, 0.0), (53.2406, 80.0923, 67.2028)),
        ((0.0, 1.0, 0.0), (87.7351, -86.1830, 83.1797)),
        ((0.0, 0.0, 1.0), (32.2957, 79.1856, -107.8573)),
    ],
)
def test_rgb_to_lab_known_colours(rgb: tuple, expected: tuple) -> None:
    lab = rgb_to_lab(_pixel(*rgb)).flatten()
    # White's a, b are not exactly 0 with the D65 white point as rounded in sRGB (~5e-3).
    np.testing.assert_allclose(lab.numpy(), expected, atol=1e-2)
    np.testing.assert_allclose(lab.numpy(), _skimage_lab(_pixel(*rgb)).flatten(), atol=1e-6)


def test_grey_has_no_chroma() -> None:
    greys = torch.linspace(0, 1, 11, dtype=torch.float64).view(1, 1, 1, 11).expand(1, 3, 1, 11)
    lab = rgb_to_lab(greys)
    assert lab[:, 1:].abs().max() < 1e-2
    assert torch.all(lab[0, 0, 0, 1:] > lab[0, 0, 0, :-1])  # L increases with grey level


def test_rgb_to_lab_clamps_out_of_range_input() -> None:
    over = _pixel(1.5, -0.2, 0.3)
    np.testing.assert_allclose(rgb_to_lab(over).numpy(), rgb_to_lab(_pixel(1.0, 0.0, 0.3)).numpy())


# --- lab_to_rgb and round trips -------------------------------------------------------------


def test_round_trip_float64(random_rgb: torch.Tensor) -> None:
    back = lab_to_rgb(rgb_to_lab(random_rgb))
    assert back.dtype == torch.float64
    torch.testing.assert_close(back, random_rgb, atol=1e-4, rtol=0)


def test_round_trip_float32(random_rgb: torch.Tensor) -> None:
    rgb = random_rgb.float()
    back = lab_to_rgb(rgb_to_lab(rgb))
    assert back.dtype == torch.float32
    torch.testing.assert_close(back, rgb, atol=1e-3, rtol=0)


def test_round_trip_on_cube_corners() -> None:
    corners = torch.tensor(
        [[r, g, b] for r in (0.0, 1.0) for g in (0.0, 1.0) for b in (0.0, 1.0)],
        dtype=torch.float64,
    ).T.reshape(1, 3, 8, 1)
    torch.testing.assert_close(lab_to_rgb(rgb_to_lab(corners)), corners, atol=1e-4, rtol=0)


def test_lab_to_rgb_clips_unless_asked_not_to() -> None:
    out_of_gamut = torch.tensor([50.0, 120.0, -120.0], dtype=torch.float64).view(1, 3, 1, 1)
    clipped = lab_to_rgb(out_of_gamut)
    assert clipped.min() >= 0 and clipped.max() <= 1
    raw = lab_to_rgb(out_of_gamut, clip=False)
    assert raw.min() < 0 or raw.max() > 1


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_device_and_dtype_are_kept(dtype: torch.dtype) -> None:
    rgb = torch.rand(2, 3, 4, 4, dtype=dtype)
    for out in (
        rgb_to_lab(rgb),
        lab_to_rgb(rgb_to_lab(rgb)),
        course_grey(rgb),
        lab_lightness(rgb),
        replace_lightness(rgb, lab_lightness(rgb)),
    ):
        assert out.dtype == dtype
        assert out.device == rgb.device


def test_extra_leading_dimensions() -> None:
    rgb = torch.rand(2, 4, 3, 5, 6, dtype=torch.float64)
    lab = rgb_to_lab(rgb)
    assert lab.shape == rgb.shape
    torch.testing.assert_close(lab[1, 2], rgb_to_lab(rgb[1, 2:3])[0])
    torch.testing.assert_close(lab_to_rgb(lab), rgb, atol=1e-4, rtol=0)
    assert course_grey(rgb).shape == (2, 4, 1, 5, 6)
    assert lab_lightness(rgb).shape == (2, 4, 1, 5, 6)
    # No batch dimension at all: (3, H, W).
    single = rgb[0, 0]
    torch.testing.assert_close(rgb_to_lab(single), lab[0, 0])


# --- grey, lightness, joining and replacing L ------------------------------------------------


def test_course_grey_is_the_mean(random_rgb: torch.Tensor) -> None:
    grey = course_grey(random_rgb)
    assert grey.shape == (3, 1, 8, 9)
    expected = (random_rgb[:, 0] + random_rgb[:, 1] + random_rgb[:, 2]) / 3
    torch.testing.assert_close(grey[:, 0], expected)


def test_lab_lightness_matches_skimage(random_rgb: torch.Tensor) -> None:
    lightness = lab_lightness(random_rgb)
    assert lightness.shape == (3, 1, 8, 9)
    np.testing.assert_allclose(lightness.numpy(), _skimage_lab(random_rgb)[:, :1], atol=1e-6)
    assert lightness.min() >= 0 and lightness.max() <= 100


def test_join_lightness_and_ab_rebuilds_in_gamut_colours(random_rgb: torch.Tensor) -> None:
    lab = rgb_to_lab(random_rgb)
    joined = join_lightness_and_ab(lab[:, :1], lab[:, 1:])
    torch.testing.assert_close(joined, random_rgb, atol=1e-4, rtol=0)
    torch.testing.assert_close(lab_lightness(joined), lab[:, :1], atol=1e-6, rtol=0)


def test_join_keeps_the_lightness_for_in_gamut_colours() -> None:
    # Pale colours: their chroma stays in gamut at any L between 30 and 70.
    generator = torch.Generator().manual_seed(1)
    rgb = 0.4 + 0.2 * torch.rand(2, 3, 6, 6, generator=generator, dtype=torch.float64)
    ab = rgb_to_lab(rgb)[:, 1:]
    lightness = 30 + 40 * torch.rand(2, 1, 6, 6, generator=generator, dtype=torch.float64)
    assert lab_to_rgb(torch.cat((lightness, ab), 1), clip=False).min() > 0  # really in gamut
    joined = join_lightness_and_ab(lightness, ab)
    torch.testing.assert_close(lab_lightness(joined), lightness, atol=1e-6, rtol=0)


def test_replace_lightness_keeps_ab_and_takes_l() -> None:
    generator = torch.Generator().manual_seed(2)
    rgb = 0.35 + 0.3 * torch.rand(2, 3, 5, 5, generator=generator, dtype=torch.float64)
    lightness = 40 + 20 * torch.rand(2, 1, 5, 5, generator=generator, dtype=torch.float64)
    replaced = replace_lightness(rgb, lightness)
    assert replaced.shape == rgb.shape
    lab_before, lab_after = rgb_to_lab(rgb), rgb_to_lab(replaced)
    torch.testing.assert_close(lab_after[:, 1:], lab_before[:, 1:], atol=1e-6, rtol=0)
    torch.testing.assert_close(lab_after[:, :1], lightness, atol=1e-6, rtol=0)


def test_replace_lightness_with_own_lightness_is_identity(random_rgb: torch.Tensor) -> None:
    same = replace_lightness(random_rgb, lab_lightness(random_rgb))
    torch.testing.assert_close(same, random_rgb, atol=1e-4, rtol=0)


# --- input checks ---------------------------------------------------------------------------


@pytest.mark.parametrize("function", [rgb_to_lab, lab_to_rgb, course_grey, lab_lightness])
def test_non_tensor_is_a_type_error(function) -> None:
    with pytest.raises(TypeError, match="torch.Tensor"):
        function(np.zeros((1, 3, 2, 2)))


@pytest.mark.parametrize("function", [rgb_to_lab, lab_to_rgb, course_grey, lab_lightness])
@pytest.mark.parametrize("shape", [(1, 4, 2, 2), (1, 1, 5, 5), (3, 2)])
def test_wrong_shape_is_a_value_error_naming_it(function, shape: tuple) -> None:
    with pytest.raises(ValueError, match=re.escape(str(shape))):
        function(torch.zeros(shape))


@pytest.mark.parametrize("function", [rgb_to_lab, lab_to_rgb, course_grey])
def test_integer_tensor_is_a_type_error(function) -> None:
    with pytest.raises(TypeError, match="floating point"):
        function(torch.zeros(1, 3, 2, 2, dtype=torch.uint8))


def test_join_checks_its_inputs() -> None:
    with pytest.raises(ValueError, match=re.escape("(1, 3, 2, 2)")):
        join_lightness_and_ab(torch.zeros(1, 3, 2, 2), torch.zeros(1, 2, 2, 2))
    with pytest.raises(ValueError, match=re.escape("(1, 3, 2, 2)")):
        join_lightness_and_ab(torch.zeros(1, 1, 2, 2), torch.zeros(1, 3, 2, 2))


# --- gradients ------------------------------------------------------------------------------


def test_rgb_to_lab_gradcheck() -> None:
    generator = torch.Generator().manual_seed(3)
    rgb = 0.05 + 0.9 * torch.rand(1, 3, 2, 2, generator=generator, dtype=torch.float64)
    rgb.requires_grad_(True)
    assert torch.autograd.gradcheck(rgb_to_lab, (rgb,), eps=1e-6, atol=1e-5)


def test_lab_to_rgb_gradcheck() -> None:
    generator = torch.Generator().manual_seed(4)
    rgb = 0.2 + 0.6 * torch.rand(1, 3, 2, 2, generator=generator, dtype=torch.float64)
    lab = rgb_to_lab(rgb).detach().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: lab_to_rgb(x, clip=False), (lab,), atol=1e-5)


def test_grey_lightness_matches_the_lab_conversion() -> None:
    levels = torch.arange(256, dtype=torch.float32).view(1, 1, 1, 256) / 255  # every 8-bit grey
    exact = lab_lightness(levels.expand(1, 3, 1, 256))
    assert torch.allclose(grey_lightness(levels), exact, atol=1e-4)
    between = torch.rand(2, 1, 9, 7, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(
        grey_lightness(between), lab_lightness(between.expand(2, 3, 9, 7)), atol=0.01
    )
    with pytest.raises(ValueError, match=r"\(\*, 1, H, W\)"):
        grey_lightness(torch.rand(1, 3, 4, 4))


def test_rgb_lightness_matches_lab_l() -> None:
    """rgb_lightness (luminance Y alone) agrees with rgb_to_lab's L, floats and uint8."""
    from colorcnn.color.spaces import rgb_lightness

    generator = torch.Generator().manual_seed(0)
    rgb = torch.rand(2, 3, 32, 48, generator=generator)
    edges = torch.tensor(
        [0.0, 1.0, 0.04045, 0.0404, 0.0405, 1 / 255, 254 / 255, 0.5, -0.1, 1.1]
    )  # the sRGB knee, black, white, and out-of-range values (clamped)
    grid = torch.cartesian_prod(edges, edges, edges).T.reshape(1, 3, 1, -1)
    for image in (rgb, grid):
        expected = rgb_to_lab(image)[:, :1]
        assert (rgb_lightness(image) - expected).abs().max() < 1e-3
    levels = torch.randint(0, 256, (1, 3, 16, 16), generator=generator, dtype=torch.uint8)
    levels[0, :, 0, :4] = torch.tensor([0, 255, 10, 11], dtype=torch.uint8)
    expected = rgb_to_lab(levels.float() / 255.0)[:, :1]
    assert (rgb_lightness(levels) - expected).abs().max() < 1e-3


def test_the_8_bit_lab_conversion_writes_what_kornia_gives() -> None:
    from colorcnn.color.spaces import lab_to_rgb_uint8
    from colorcnn.inference.images import to_uint8

    torch.manual_seed(0)
    lightness = torch.rand(300, 400) * 100
    ab = (torch.rand(2, 300, 400) - 0.5) * 240  # out of gamut too: clipped alike
    lightness[0, :10] = torch.tensor([0.0, 100.0, 50.0, 0.001, 99.999, 8.0, 8.1, 30, 60, 90])
    ab[:, 0, :10] = 0.0  # greys, black and white exactly
    ours = lab_to_rgb_uint8(lightness, ab).numpy()
    theirs = to_uint8(lab_to_rgb(torch.cat((lightness[None], ab))[None])[0])
    assert ours.shape == theirs.shape == (300, 400, 3) and ours.dtype == theirs.dtype
    difference = np.abs(ours.astype(int) - theirs.astype(int))
    assert difference.max() <= 1
    assert (difference > 0).mean() < 1e-3  # only values at a rounding boundary
    assert np.array_equal(ours[0, :10], theirs[0, :10])


def test_the_8_bit_lab_conversion_writes_black_for_nan() -> None:
    from colorcnn.color.spaces import lab_to_rgb_uint8

    lightness = torch.full((2, 3), 50.0)
    ab = torch.full((2, 2, 3), float("nan"))
    assert lab_to_rgb_uint8(lightness, ab).numpy().max() == 0

"""Evaluation metrics: PSNR, SSIM, colourfulness, ab errors, the error-curve AUC, weights."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.color import rgb2lab

from colorcnn.evaluation.metrics import (
    AUC_MAX_THRESHOLD,
    PSNR_CAP_DB,
    ab_errors,
    accuracy_percent,
    colourfulness,
    correct_pixels,
    error_curve_auc,
    psnr_per_image,
    rebalanced_pixel_weights,
    ssim_per_image,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _rand(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _solid(r: float, g: float, b: float, h: int = 4, w: int = 4) -> torch.Tensor:
    return torch.tensor([r, g, b]).view(1, 3, 1, 1).expand(1, 3, h, w).clone()


def _hand_auc(errors: np.ndarray, weights: np.ndarray | None = None) -> float:
    errors = errors.ravel()
    weights = np.ones_like(errors) if weights is None else weights.ravel()
    shares = [weights[errors <= t].sum() / weights.sum() for t in range(AUC_MAX_THRESHOLD + 1)]
    return float(np.mean(shares))


# --- colourfulness --------------------------------------------------------------------------


def test_colourfulness_of_grey_images_is_zero() -> None:
    grey = _rand(3, 1, 8, 8).expand(3, 3, 8, 8)
    torch.testing.assert_close(colourfulness(grey), torch.zeros(3))
    assert colourfulness(_solid(0.5, 0.5, 0.5)).item() == 0.0


def test_colourfulness_of_a_two_colour_image_matches_numpy() -> None:
    image = torch.zeros(1, 3, 4, 4)
    image[0, :, :, :2] = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)  # red half
    image[0, :, :, 2:] = torch.tensor([0.2, 0.4, 0.9]).view(3, 1, 1)  # blue-ish half
    r, g, b = (255.0 * image[0].double().numpy()).reshape(3, -1)
    rg, yb = r - g, 0.5 * (r + g) - b
    expected = np.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * np.sqrt(
        rg.mean() ** 2 + yb.mean() ** 2
    )
    # The same by hand from the two colours: each half has rg, yb of one colour.
    rg_values, yb_values = np.array([255.0, -51.0]), np.array([127.5, -153.0])
    by_hand = np.hypot(np.ptp(rg_values) / 2, np.ptp(yb_values) / 2) + 0.3 * np.hypot(
        rg_values.mean(), yb_values.mean()
    )
    assert expected == pytest.approx(by_hand)
    assert colourfulness(image).item() == pytest.approx(expected, rel=1e-5)


def test_colourfulness_per_image_and_ordering() -> None:
    pale = 0.5 + 0.05 * (_rand(1, 3, 8, 8, seed=1) - 0.5)
    vivid = _rand(1, 3, 8, 8, seed=2)
    scores = colourfulness(torch.cat((pale, vivid)))
    assert scores.shape == (2,)
    assert 0 < scores[0] < scores[1]
    assert scores[1].item() == pytest.approx(colourfulness(vivid).item())


def test_colourfulness_of_a_solid_colour_is_its_mean_term() -> None:
    # No spread: only 0.3 * sqrt(rg^2 + yb^2) of the one colour.
    score = colourfulness(_solid(1.0, 0.0, 0.0)).item()
    assert score == pytest.approx(0.3 * math.hypot(255.0, 127.5), rel=1e-6)


def test_colourfulness_rejects_non_rgb() -> None:
    with pytest.raises(ValueError, match=r"\(2, 1, 4, 4\)"):
        colourfulness(torch.zeros(2, 1, 4, 4))


# --- PSNR and SSIM --------------------------------------------------------------------------


def test_psnr_of_identical_images_is_the_cap() -> None:
    images = _rand(3, 3, 8, 8)
    psnr = psnr_per_image(images, images.clone())
    assert PSNR_CAP_DB == 100.0
    torch.testing.assert_close(psnr, torch.full((3,), 100.0))
    assert torch.isfinite(psnr).all()


def test_psnr_of_a_constant_offset() -> None:
    truth = 0.9 * _rand(1, 3, 8, 8, dtype=torch.float64)
    psnr = psnr_per_image(truth + 0.1, truth)
    assert psnr.item() == pytest.approx(10 * math.log10(1 / 0.01), abs=1e-6)  # 20 dB


def test_psnr_is_per_image() -> None:
    truth = 0.9 * _rand(2, 3, 8, 8, dtype=torch.float64)
    prediction = truth.clone()
    prediction[0] += 0.1
    prediction[1] += 0.01
    psnr = psnr_per_image(prediction, truth)
    torch.testing.assert_close(psnr, torch.tensor([20.0, 40.0], dtype=torch.float64))
    # Not the PSNR of the pooled mean squared error.
    pooled = 10 * math.log10(1 / ((0.01 + 0.0001) / 2))
    assert psnr.mean().item() != pytest.approx(pooled, abs=0.1)
    # Splitting the batch does not change the per-image values.
    torch.testing.assert_close(psnr_per_image(prediction[1:], truth[1:]), psnr[1:])


def test_psnr_mixes_capped_and_finite_images() -> None:
    truth = 0.9 * _rand(2, 3, 8, 8, dtype=torch.float64)
    prediction = truth.clone()
    prediction[1] += 0.1
    torch.testing.assert_close(
        psnr_per_image(prediction, truth), torch.tensor([100.0, 20.0], dtype=torch.float64)
    )


def test_ssim_of_identical_images_is_one() -> None:
    images = _rand(2, 3, 16, 16)
    ssim = ssim_per_image(images, images.clone())
    assert ssim.shape == (2,)
    torch.testing.assert_close(ssim, torch.ones(2), atol=1e-4, rtol=0)


def test_ssim_decreases_with_noise() -> None:
    truth = _rand(1, 3, 16, 16, seed=3)
    noise = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(4))
    scores = [
        ssim_per_image((truth + sigma * noise).clamp(0, 1), truth).item()
        for sigma in (0.0, 0.02, 0.1, 0.3)
    ]
    assert scores[0] == pytest.approx(1.0, abs=1e-4)
    assert all(a > b for a, b in zip(scores, scores[1:], strict=False)), scores
    assert scores[-1] < 0.8


@pytest.mark.parametrize("side", [3, 4, 5, 6])
def test_ssim_on_images_smaller_than_the_window(side: int) -> None:
    images = _rand(2, 3, side, side, seed=side)
    torch.testing.assert_close(ssim_per_image(images, images), torch.ones(2), atol=1e-4, rtol=0)
    worse = ssim_per_image((1 - images), images)
    assert torch.all(worse < 0.9)


# --- ab errors and the AUC ------------------------------------------------------------------


def test_ab_errors_of_identical_images_are_zero() -> None:
    images = _rand(2, 3, 5, 7)
    errors = ab_errors(images, images.clone())
    assert errors.shape == (2, 5, 7)
    assert torch.all(errors == 0)


def test_ab_errors_match_skimage() -> None:
    prediction = _rand(2, 3, 5, 7, seed=5, dtype=torch.float64)
    truth = _rand(2, 3, 5, 7, seed=6, dtype=torch.float64)
    lab_p = rgb2lab(prediction.permute(0, 2, 3, 1).numpy())
    lab_t = rgb2lab(truth.permute(0, 2, 3, 1).numpy())
    expected = np.linalg.norm(lab_p[..., 1:] - lab_t[..., 1:], axis=-1)
    np.testing.assert_allclose(ab_errors(prediction, truth).numpy(), expected, atol=1e-6)


def test_ab_errors_ignore_lightness() -> None:
    grey_dark, grey_light = _solid(0.2, 0.2, 0.2), _solid(0.8, 0.8, 0.8)
    assert ab_errors(grey_dark, grey_light).max() < 1e-2
    red = _solid(1.0, 0.0, 0.0)
    assert ab_errors(red, grey_light).mean().item() == pytest.approx(
        math.hypot(80.09, 67.20), abs=0.05
    )


def test_auc_of_exact_predictions_is_one() -> None:
    assert error_curve_auc(torch.zeros(2, 4, 4)) == 1.0


def test_auc_beyond_the_last_threshold_is_zero() -> None:
    assert error_curve_auc(torch.full((2, 4, 4), 200.0)) == 0.0
    assert error_curve_auc(torch.full((3,), 150.5)) == 0.0


def test_auc_of_a_constant_error() -> None:
    # Thresholds 75, 76, ..., 150 count the pixels: 76 of the 151 thresholds.
    assert error_curve_auc(torch.full((2, 4, 4), 75.0)) == pytest.approx(76 / 151)
    assert error_curve_auc(torch.full((5,), 150.0)) == pytest.approx(1 / 151)
    assert error_curve_auc(torch.full((5,), 74.5)) == pytest.approx(76 / 151)


def test_auc_half_exact_half_wrong() -> None:
    errors = torch.tensor([0.0, 0.0, 300.0, 300.0])
    assert error_curve_auc(errors) == pytest.approx(0.5)


def test_auc_matches_the_definition_with_ties_and_weights() -> None:
    generator = torch.Generator().manual_seed(7)
    errors = torch.randint(0, 180, (3, 6, 6), generator=generator).float()  # many ties
    weights = torch.rand(3, 6, 6, generator=generator)
    assert error_curve_auc(errors) == pytest.approx(_hand_auc(errors.numpy()))
    assert error_curve_auc(errors, weights) == pytest.approx(
        _hand_auc(errors.numpy(), weights.double().numpy())
    )
    # Scaling the weights changes nothing.
    assert error_curve_auc(errors, 7 * weights) == pytest.approx(error_curve_auc(errors, weights))


def test_auc_ignores_pixels_of_zero_weight() -> None:
    errors = torch.tensor([0.0, 0.0, 500.0])
    assert error_curve_auc(errors, torch.tensor([1.0, 1.0, 0.0])) == pytest.approx(1.0)


# --- rebalanced weights ---------------------------------------------------------------------


def test_rebalanced_weights_make_each_colour_count_the_same() -> None:
    bins = torch.tensor([3] * 90 + [7] * 10).view(1, 10, 10)
    weights = rebalanced_pixel_weights(bins, num_bins=12)
    assert weights.shape == bins.shape
    assert weights[bins == 3].sum().item() == pytest.approx(1.0)
    assert weights[bins == 7].sum().item() == pytest.approx(1.0)
    torch.testing.assert_close(weights[bins == 7], torch.full((10,), 0.1, dtype=weights.dtype))
    # The frequent colour is exact, the rare one is off by 200: plain AUC 0.9, rebalanced 0.5.
    errors = torch.where(bins == 3, 0.0, 200.0)
    assert error_curve_auc(errors) == pytest.approx(0.9)
    assert error_curve_auc(errors, weights) == pytest.approx(0.5)


# --- the course's accuracy ------------------------------------------------------------------


def test_correct_pixels_and_accuracy() -> None:
    target = torch.tensor([[[0, 1], [2, 3]], [[1, 1], [1, 1]]])
    predicted = torch.tensor([[[0, 1], [0, 0]], [[1, 1], [1, 2]]])
    correct = correct_pixels(predicted, target)
    assert correct == 5
    assert isinstance(correct, int)
    assert accuracy_percent(correct, target.numel()) == pytest.approx(62.5)
    assert accuracy_percent(8, 8) == 100.0
    assert math.isnan(accuracy_percent(0, 0))


# --- shape checks ---------------------------------------------------------------------------


@pytest.mark.parametrize("metric", [psnr_per_image, ssim_per_image, ab_errors])
@pytest.mark.parametrize(
    ("shape_a", "shape_b"),
    [
        ((2, 3, 4, 4), (2, 3, 4, 5)),
        ((2, 3, 4, 4), (1, 3, 4, 4)),
        ((2, 1, 4, 4), (2, 1, 4, 4)),
        ((3, 4, 4), (3, 4, 4)),
    ],  # fmt: skip
)
def test_image_metrics_reject_bad_shapes(metric, shape_a: tuple, shape_b: tuple) -> None:
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        metric(torch.rand(shape_a), torch.rand(shape_b))


def test_correct_pixels_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match=r"\(2, 4, 4\).*\(2, 4, 5\)"):
        correct_pixels(
            torch.zeros(2, 4, 4, dtype=torch.long), torch.zeros(2, 4, 5, dtype=torch.long)
        )

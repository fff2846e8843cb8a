"""Metrics of the field, on RGB in [0, 1] of shape (N, 3, H, W) unless said otherwise.

Every image metric is computed per image and then averaged over images, so that a batch
of images scores the same however it is split.
"""

from __future__ import annotations

from functools import partial

import torch
from kornia.metrics import psnr as kornia_psnr
from kornia.metrics import ssim as kornia_ssim

from colorcnn.color.spaces import rgb_to_lab

# Identical images have infinite PSNR; it is capped here so that means stay finite.
PSNR_CAP_DB = 100.0
SSIM_WINDOW = 7  # fits 32 px CIFAR images; 11 (the usual) leaves little of the image
AUC_MAX_THRESHOLD = 150  # ab error thresholds 0, 1, ..., 150 (Zhang et al. 2016)


def correct_pixels(predicted: torch.Tensor, target: torch.Tensor) -> int:
    """How many pixels have the target colour index; both (N, H, W)."""
    if predicted.shape != target.shape:
        raise ValueError(
            f"predicted {tuple(predicted.shape)} and target {tuple(target.shape)} differ"
        )
    return int((predicted == target).sum())


def accuracy_percent(correct: int, total: int) -> float:
    return 100.0 * correct / total if total else float("nan")


def _check_pair(prediction: torch.Tensor, truth: torch.Tensor) -> None:
    if prediction.shape != truth.shape or prediction.ndim != 4 or prediction.shape[1] != 3:
        raise ValueError(
            "expected two RGB batches of the same shape (N, 3, H, W), got "
            f"{tuple(prediction.shape)} and {tuple(truth.shape)}"
        )


# kornia's PSNR of one image, mapped over a batch in one vectorized call.
_psnr_of_each = torch.vmap(partial(kornia_psnr, max_val=1.0))


def psnr_per_image(prediction: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of each image (N,), capped at PSNR_CAP_DB for identical images."""
    _check_pair(prediction, truth)
    values = _psnr_of_each(prediction, truth)
    # Only +inf (identical images) is capped; a NaN from a broken prediction stays NaN.
    return torch.where(torch.isposinf(values), torch.full_like(values, PSNR_CAP_DB), values)


def ssim_per_image(prediction: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Mean SSIM of each image (N,), Gaussian window of SSIM_WINDOW px, over RGB."""
    _check_pair(prediction, truth)
    smallest_side = min(prediction.shape[-2:])
    window = SSIM_WINDOW if smallest_side >= SSIM_WINDOW else max(1, (smallest_side - 1) | 1)
    maps = kornia_ssim(prediction, truth, window_size=window, max_val=1.0)
    return maps.flatten(1).mean(dim=1)


def colourfulness(rgb: torch.Tensor) -> torch.Tensor:
    """Hasler and Suesstrunk (2003) colourfulness of each image (N,), on the 0-255 scale.

    rg = R - G, yb = (R + G) / 2 - B; CF = sqrt(std(rg)^2 + std(yb)^2)
    + 0.3 sqrt(mean(rg)^2 + mean(yb)^2). Grey images score 0.
    """
    if rgb.ndim != 4 or rgb.shape[1] != 3:
        raise ValueError(f"expected RGB of shape (N, 3, H, W), got {tuple(rgb.shape)}")
    r, g, b = (255.0 * rgb.double()).unbind(dim=1)
    rg = (r - g).flatten(1)
    yb = (0.5 * (r + g) - b).flatten(1)
    spread = torch.sqrt(rg.var(dim=1, unbiased=False) + yb.var(dim=1, unbiased=False))
    centre = torch.sqrt(rg.mean(dim=1) ** 2 + yb.mean(dim=1) ** 2)
    return (spread + 0.3 * centre).float()


def ab_errors(prediction: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Euclidean ab distance of every pixel (N, H, W)."""
    _check_pair(prediction, truth)
    difference = rgb_to_lab(prediction)[:, 1:] - rgb_to_lab(truth)[:, 1:]
    return difference.norm(dim=1)


def error_curve_auc(errors: torch.Tensor, weights: torch.Tensor | None = None) -> float:
    """Area under the cumulative error curve for thresholds 0..150, normalised to [0, 1].

    The curve gives, for each threshold t, the (weighted) share of pixels whose ab error is
    at most t. 1.0 means every pixel is exact; a method that is off by more than 150
    everywhere scores 0.
    """
    errors = errors.flatten().double()
    weights = torch.ones_like(errors) if weights is None else weights.flatten().double()
    thresholds = torch.arange(0, AUC_MAX_THRESHOLD + 1, dtype=torch.float64)
    order = torch.argsort(errors)
    sorted_errors = errors[order]
    cumulative = torch.cumsum(weights[order], dim=0)
    counts = torch.searchsorted(sorted_errors, thresholds, right=True)
    shares = torch.where(counts > 0, cumulative[(counts - 1).clamp(min=0)], 0.0) / weights.sum()
    return float(shares.mean())


def rebalanced_pixel_weights(bins_of_truth: torch.Tensor, num_bins: int) -> torch.Tensor:
    """Weights 1 / frequency of each pixel's true ab bin, so every colour counts equally."""
    counts = torch.bincount(bins_of_truth.flatten(), minlength=num_bins).double()
    return (1.0 / counts)[bins_of_truth]

"""Per-pixel metrics of the course."""

from __future__ import annotations

import torch


def correct_pixels(predicted: torch.Tensor, target: torch.Tensor) -> int:
    """How many pixels have the target colour index; both (N, H, W)."""
    if predicted.shape != target.shape:
        raise ValueError(
            f"predicted {tuple(predicted.shape)} and target {tuple(target.shape)} differ"
        )
    return int((predicted == target).sum())


def accuracy_percent(correct: int, total: int) -> float:
    return 100.0 * correct / total if total else float("nan")

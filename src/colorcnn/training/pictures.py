"""Pictures of a run: the per-epoch prediction grid and the loss curves.

Every figure of colorcnn is a `matplotlib.figure.Figure` made directly, never through
matplotlib's global figure manager: such a figure needs no backend and no closing, so
importing colorcnn leaves the backend of a notebook or a program alone, and training still
works without a display."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from colorcnn.files import atomic_path

PICTURE_DPI = 100


def _row(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) in [0, 1] -> one (H, N*W, 3) strip with a 1 px white gutter."""
    images = images.detach().float().cpu().clamp(0, 1)
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    n, _, h, w = images.shape
    strip = np.ones((h, n * (w + 1) - 1, 3), dtype=np.float32)
    for index, image in enumerate(images):
        strip[:, index * (w + 1) : index * (w + 1) + w] = image.permute(1, 2, 0).numpy()
    return strip


def save_figure(figure: Figure, path: Path) -> None:
    with atomic_path(path) as tmp_path:
        figure.savefig(tmp_path, format="png", dpi=PICTURE_DPI, bbox_inches="tight")


def epoch_axis(axis: Axes) -> None:
    """An x axis of whole epochs, numbered from 0 as the run's files and prediction
    pictures are (pictures/epoch_000.png is the course's epoch-0 picture): the default
    locator would put ticks at 0.5, 1.5, ..."""
    axis.set_xlabel("epoch")
    # min_n_ticks=1: with the default of 2, a one-epoch run's narrow axis holds too few
    # whole numbers and the locator falls back to 0.96, 0.98, ...; steps: 5, 10, 15 rather
    # than 3, 6, 9 for a 25-epoch run.
    axis.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1, steps=[1, 2, 5, 10]))


def save_prediction_grid(rows: dict[str, torch.Tensor], path: Path, title: str) -> None:
    """One labelled row per entry, e.g. grey input / quantized ground truth / prediction."""
    strips = {label: _row(images) for label, images in rows.items()}
    width = max(strip.shape[1] for strip in strips.values())
    figure = Figure(figsize=(max(6.0, width / 32), 1.1 * len(strips) + 0.6))
    axes = figure.subplots(len(strips), 1, squeeze=False)
    for axis, (label, strip) in zip(axes[:, 0], strips.items(), strict=True):
        axis.imshow(strip, interpolation="nearest")
        axis.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
        axis.set_xticks([])
        axis.set_yticks([])
    figure.suptitle(title, fontsize=10)
    save_figure(figure, path)


def loss_curve_figure(history: list[dict], title: str) -> Figure:
    """Train and validation loss per epoch, with validation accuracy beside them."""
    epochs = [record["epoch"] for record in history]
    figure = Figure(figsize=(10, 3.6))
    loss_axis, acc_axis = figure.subplots(1, 2)
    loss_axis.plot(epochs, [r["train_loss"] for r in history], "o-", label="train")
    loss_axis.plot(epochs, [r["val_loss"] for r in history], "o-", label="validation")
    epoch_axis(loss_axis)
    loss_axis.set_ylabel("loss")
    loss_axis.legend()
    loss_axis.grid(alpha=0.3)
    acc_axis.plot(epochs, [r["val_acc"] for r in history], "o-", color="tab:green")
    epoch_axis(acc_axis)
    acc_axis.set_ylabel("validation accuracy (%)")
    acc_axis.grid(alpha=0.3)
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def save_loss_curves(history: list[dict], path: Path, title: str) -> None:
    save_figure(loss_curve_figure(history, title), path)

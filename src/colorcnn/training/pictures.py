"""Pictures of a run: the per-epoch prediction grid and the loss curves."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; training must work without a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from colorcnn.files import atomic_path  # noqa: E402

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


def save_figure(figure: plt.Figure, path: Path) -> None:
    with atomic_path(path) as tmp_path:
        figure.savefig(tmp_path, format="png", dpi=PICTURE_DPI, bbox_inches="tight")
    plt.close(figure)


def save_prediction_grid(rows: dict[str, torch.Tensor], path: Path, title: str) -> None:
    """One labelled row per entry, e.g. grey input / quantized ground truth / prediction."""
    strips = {label: _row(images) for label, images in rows.items()}
    width = max(strip.shape[1] for strip in strips.values())
    figure, axes = plt.subplots(
        len(strips), 1, figsize=(max(6.0, width / 32), 1.1 * len(strips) + 0.6), squeeze=False
    )
    for axis, (label, strip) in zip(axes[:, 0], strips.items(), strict=True):
        axis.imshow(strip, interpolation="nearest")
        axis.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
        axis.set_xticks([])
        axis.set_yticks([])
    figure.suptitle(title, fontsize=10)
    save_figure(figure, path)


def save_loss_curves(history: list[dict], path: Path, title: str) -> None:
    """Train and validation loss per epoch, with validation accuracy beside them."""
    epochs = [record["epoch"] for record in history]
    figure, (loss_axis, acc_axis) = plt.subplots(1, 2, figsize=(10, 3.6))
    loss_axis.plot(epochs, [r["train_loss"] for r in history], "o-", label="train")
    loss_axis.plot(epochs, [r["val_loss"] for r in history], "o-", label="validation")
    loss_axis.set_xlabel("epoch")
    loss_axis.set_ylabel("loss")
    loss_axis.legend()
    loss_axis.grid(alpha=0.3)
    acc_axis.plot(epochs, [r["val_acc"] for r in history], "o-", color="tab:green")
    acc_axis.set_xlabel("epoch")
    acc_axis.set_ylabel("validation accuracy (%)")
    acc_axis.grid(alpha=0.3)
    figure.suptitle(title)
    figure.tight_layout()
    save_figure(figure, path)

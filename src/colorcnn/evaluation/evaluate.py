"""Validation loss and accuracy of a model over a whole split."""

from __future__ import annotations

from pathlib import Path

import torch

from colorcnn.color.formulations import Formulation
from colorcnn.errors import ColorcnnError
from colorcnn.evaluation.metrics import accuracy_percent, correct_pixels


@torch.inference_mode()
def evaluate(
    model: torch.nn.Module,
    grey: torch.Tensor,
    targets: torch.Tensor,
    formulation: Formulation,
    batch_size: int = 100,
) -> dict[str, float]:
    """Mean per-batch loss (as the course averages it) and percent of pixels coloured right.

    `targets` are what the formulation trains on; accuracy always compares palette indices,
    so that regression and classification models are scored alike.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    losses: list[float] = []
    correct = total = 0
    for start in range(0, len(grey), batch_size):
        inputs = grey[start : start + batch_size].to(device)
        batch_targets = targets[start : start + batch_size].to(device)
        outputs = model(inputs)
        losses.append(float(formulation.loss(outputs, batch_targets)))
        predicted = formulation.colour_indices(outputs)
        truth = (
            batch_targets
            if batch_targets.dtype == torch.int64
            else formulation.colour_indices(batch_targets)
        )
        correct += correct_pixels(predicted, truth)
        total += truth.numel()
    model.train(was_training)
    return {"val_loss": sum(losses) / len(losses), "val_acc": accuracy_percent(correct, total)}


def evaluate_checkpoint(
    checkpoint_path: str | Path,
    data: str | None = None,
    *,
    prefer: str = "best",
    batch_size: int = 100,
    cache_dir: Path | None = None,
    device: str = "cpu",
) -> dict:
    """Validation loss and accuracy of a saved model on the test split of its category.

    The palette, category and shuffle seed come from the checkpoint, so the numbers are
    those of training; `data` overrides only where the images are read from.
    """
    from colorcnn.color.formulations import formulation_for
    from colorcnn.color.palette import check_palette
    from colorcnn.data.datasets import DataSettings, load_course_data
    from colorcnn.training.checkpoint import build_model, load_checkpoint, resolve_checkpoint
    from colorcnn.training.loop import resolve_device

    if batch_size < 1:
        raise ColorcnnError(f"batch-size must be a positive integer, got {batch_size}")
    tensor_path = resolve_checkpoint(checkpoint_path, prefer)
    checkpoint = load_checkpoint(tensor_path)
    info = checkpoint.info
    settings = DataSettings(**info["data"])
    if data is not None:
        settings = DataSettings(data, settings.category, settings.seed)
    target_device = resolve_device(device)
    model = build_model(checkpoint).to(target_device)
    palette = check_palette(torch.tensor(info["palette"], dtype=torch.float32)).to(target_device)
    formulation = formulation_for(info["objective"], palette)
    course_data = load_course_data(settings, cache_dir)
    grey = course_data.test_grey.to(target_device)
    targets = formulation.targets(course_data.test_rgb.to(target_device))
    scores = evaluate(model, grey, targets, formulation, batch_size)
    return {
        "checkpoint": str(tensor_path),
        "model": info["model"],
        "epoch": info["epoch"],
        "category": settings.category,
        "num_images": len(grey),
        **scores,
    }

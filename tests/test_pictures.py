"""The pictures of a run: written without touching matplotlib's global state, with whole
epochs numbered from 0, as the run's pictures and files are."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from colorcnn.training.pictures import (
    loss_curve_figure,
    save_loss_curves,
    save_prediction_grid,
)

# Run in a fresh interpreter: this one may have imported pyplot for another test already.
# An explicit backend that is not Agg: reading it back selects nothing and imports nothing.
_IMPORT_CHECK = """
import sys
import matplotlib
before = matplotlib.get_backend()
import colorcnn.training.pictures, colorcnn.analysis.compare, colorcnn.analysis.activations
assert matplotlib.get_backend() == before, (before, matplotlib.get_backend())
assert "matplotlib.pyplot" not in sys.modules, "importing colorcnn imported pyplot"
print("backend", before)
"""


def test_importing_the_plotting_modules_leaves_matplotlib_alone() -> None:
    env = {**os.environ, "MPLBACKEND": "svg"}
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_CHECK], env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "backend svg"


def _history(epochs: int) -> list[dict]:
    return [
        {"epoch": epoch, "train_loss": 2.0 - 0.02 * epoch, "val_loss": 2.1 - 0.01 * epoch,
         "val_acc": 30.0 + epoch}
        for epoch in range(epochs)
    ]  # fmt: skip


def _shown_ticks(axis) -> list[str]:
    low, high = axis.get_xlim()
    return [
        label.get_text()
        for label in axis.get_xticklabels()
        if low <= label.get_position()[0] <= high
    ]


@pytest.mark.parametrize("epochs", [1, 3, 25])
def test_loss_curves_count_whole_epochs_from_zero_as_the_pictures_do(epochs: int) -> None:
    figure = loss_curve_figure(_history(epochs), "cnn (palette-rgb), tiny")
    figure.draw_without_rendering()  # the tick labels are set when the figure is drawn
    loss_axis, acc_axis = figure.axes
    for axis in (loss_axis, acc_axis):
        assert axis.get_xlabel() == "epoch"
        for line in axis.get_lines():
            # as pictures/epoch_000.png numbers the first epoch
            assert list(line.get_xdata()) == list(range(epochs))
        ticks = _shown_ticks(axis)
        assert ticks and all(tick.isdigit() for tick in ticks), ticks
        if epochs <= 5:  # a short run has a tick for each of its epochs
            assert ticks == [str(epoch) for epoch in range(epochs)]


def test_loss_curves_are_written_as_a_png(tmp_path: Path) -> None:
    path = tmp_path / "run" / "loss_curves.png"
    save_loss_curves(_history(4), path, "cnn (palette-rgb), tiny")
    with Image.open(path) as picture:
        assert picture.format == "PNG" and picture.width > picture.height > 100
    assert [entry.name for entry in path.parent.iterdir()] == ["loss_curves.png"]


def test_the_prediction_grid_is_written_as_a_png(tmp_path: Path) -> None:
    rows = {
        "grey": torch.rand(4, 1, 8, 8),
        "truth": torch.rand(4, 3, 8, 8),
        "prediction": torch.rand(4, 3, 8, 8),
    }
    path = tmp_path / "pictures" / "epoch_000.png"
    save_prediction_grid(rows, path, "cnn (palette-rgb), epoch 0")
    with Image.open(path) as picture:
        assert picture.format == "PNG" and picture.width > picture.height
    assert [entry.name for entry in path.parent.iterdir()] == ["epoch_000.png"]

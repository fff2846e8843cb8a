"""The weights shipped inside the package: each one loads, runs offline and is portable."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from colorcnn.cli import main
from colorcnn.inference import Colorizer
from colorcnn.training.checkpoint import build_model, load_checkpoint
from colorcnn.weights import WEIGHTS_DIR, describe_shipped, shipped_models

SHIPPED = sorted(shipped_models())


def test_the_course_models_ship() -> None:
    assert "cifar-horse-unet" in SHIPPED and len(SHIPPED) >= 6


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_loads_by_name_and_runs(name: str) -> None:
    checkpoint = load_checkpoint(name)
    model = build_model(checkpoint).eval()
    with torch.inference_mode():
        out = model(torch.rand(2, 1, 32, 32))
    assert out.shape[0] == 2 and torch.isfinite(out).all()
    assert checkpoint.optimizer_state is None  # only what inference needs is shipped
    info = describe_shipped(name)
    assert info["shipped_as"] == name and "val_loss" in info["metrics"]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_description_names_no_machine_path(name: str) -> None:
    text = (WEIGHTS_DIR / f"{name}.json").read_text()
    for fragment in ('"/', "\\\\", "~/"):
        assert fragment not in text, f"{name} mentions a local path"
    assert json.loads(text)["data"]["data"] is None  # the official CIFAR-10 download


def test_colorize_with_a_shipped_name(tmp_path: Path, capsys) -> None:
    Image.fromarray(np.full((40, 56), 120, np.uint8)).save(tmp_path / "grey.png")
    args = [
        "colorize",
        str(tmp_path / "grey.png"),
        "-m",
        "cifar-horse-unet",
        "-o",
        str(tmp_path / "o"),
    ]
    assert main([*args, "--size", "32"]) == 0
    assert Image.open(tmp_path / "o" / "grey.png").size == (56, 40)
    assert Colorizer.load("cifar-horse-unet").name.startswith("unet (palette-rgb")


def test_models_lists_shipped_weights(capsys) -> None:
    assert main(["models"]) == 0
    assert "cifar-horse-unet" in capsys.readouterr().out

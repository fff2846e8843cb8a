"""The weights shipped inside the package: each one loads, runs offline and is portable."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import colorcnn
from colorcnn.cli import main
from colorcnn.inference import Colorizer
from colorcnn.inference.colorize import sample_photos
from colorcnn.trained.checkpoint import build_model, load_checkpoint
from colorcnn.weights import WEIGHTS_DIR, describe_shipped, shipped_models

SHIPPED = sorted(shipped_models())


def test_the_course_models_ship() -> None:
    assert "cifar-horse-unet" in SHIPPED and len(SHIPPED) >= 6


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_loads_by_name_and_runs(name: str) -> None:
    checkpoint = load_checkpoint(name)
    model = build_model(checkpoint).eval()
    with torch.inference_mode():
        out = model(torch.rand(2, model.in_channels, 32, 32))
    assert out.shape[0] == 2 and torch.isfinite(out).all()
    assert checkpoint.optimizer_state is None  # only what inference needs is shipped
    info = describe_shipped(name)
    assert info["shipped_as"] == name and "val_loss" in info["metrics"]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_description_names_no_machine_path(name: str) -> None:
    text = (WEIGHTS_DIR / f"{name}.json").read_text()
    for fragment in ('"/', "\\\\", "~/"):
        assert fragment not in text, f"{name} mentions a local path"
    data = json.loads(text)["data"]
    # The official CIFAR-10 download, or for photo models the dataset's name.
    assert data["data"] in (None, data.get("dataset"))
    assert data.get("cifar_data") is None


def test_the_photo_model_ships_with_its_credits() -> None:
    info = describe_shipped("photo")
    assert info["model"] == "efficient_unet"
    assert info["data"]["dataset"] == "photos+cifar10"
    assert info["formulation"]["name"] == "ab-regression"
    credits = (WEIGHTS_DIR / "CREDITS.md").read_text()
    assert "Stefano Guerrieri" in credits  # the bundled sample's author
    assert credits.count("| gcompris__") > 200  # one row per training photo
    # Its encoder derives from EfficientNet-Lite0's ImageNet weights (Apache-2.0).
    assert "EfficientNet-Lite0" in credits and "Apache License 2.0" in credits


def test_the_earlier_photo_model_stays_available_under_its_own_name() -> None:
    info = describe_shipped("photo-unet")
    assert info["model"] == "photo_unet" and info["shipped_as"] == "photo-unet"
    assert Colorizer.load("photo-unet").working_size == 128


def test_the_photo_model_carries_its_scores_on_held_out_sources() -> None:
    scores = describe_shipped("photo")["heldout_photos"]
    assert scores["split"] == "test" and scores["photos"] > 0
    assert {"vs_grey", "vs_grey_median", "colourfulness_share", "below_grey_3db"} <= set(scores)
    # photo-unet trained on most of today's test photos (an earlier split by file name), so
    # scores there would not be held-out scores, and it carries none.
    assert "heldout_photos" not in describe_shipped("photo-unet")


def test_colorize_the_bundled_sample_with_the_default_model(tmp_path: Path) -> None:
    assert main(["colorize", "--sample", "-o", str(tmp_path)]) == 0
    (written,) = tmp_path.iterdir()
    sample = Image.open(sample_photos()[0])
    output = Image.open(written)
    assert output.size == sample.size and output.mode == "RGB"
    pixels = np.asarray(output, dtype=np.int16)
    assert np.abs(pixels[..., 0] - pixels[..., 2]).mean() > 2  # it gained colour


def test_python_api_colorizes_an_array_with_the_shipped_photo_model() -> None:
    grey = np.tile(np.linspace(0, 255, 70, dtype=np.uint8), (45, 1))
    result = colorcnn.colorize(grey)
    assert isinstance(result, Image.Image) and result.size == (70, 45)


def test_colorize_without_inputs_says_what_it_expected(capsys) -> None:
    assert main(["colorize"]) == 1
    assert "expected image files, folders or globs, or --sample" in capsys.readouterr().err


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
    listed = capsys.readouterr().out
    assert "cifar-horse-unet" in listed and "photo-unet" in listed
    gain = describe_shipped("photo")["heldout_photos"]["vs_grey"]
    assert f"{gain:+.2f}" in listed  # the held-out gain over grey


def test_an_architecture_name_points_at_its_shipped_weights(tmp_path: Path, capsys) -> None:
    grey = tmp_path / "grey.png"
    Image.fromarray(np.full((8, 8), 128, np.uint8)).save(grey)
    assert main(["colorize", str(grey), "-m", "unet", "-o", str(tmp_path / "out")]) == 1
    error = capsys.readouterr().err.strip()
    assert "unet is no shipped model, run folder or checkpoint" in error
    assert "(weights of this architecture: cifar-horse-unet)" in error
    assert all(name in error for name in shipped_models())
    assert len(error.splitlines()) == 1


def test_course_models_colourize_at_their_own_scale_by_default() -> None:
    course, photo = Colorizer.load("cifar-horse-unet"), Colorizer.load("photo")
    # The photo model's own size was chosen on the validation sources and ships with it.
    assert (course.working_size, photo.working_size) == (
        32,
        describe_shipped("photo")["working_size"],
    )
    grey = np.tile(np.linspace(0, 255, 96, dtype=np.uint8), (64, 1))
    default = np.asarray(course.colorize(grey))
    assert np.array_equal(default, np.asarray(course.colorize(grey, 32)))
    assert not np.array_equal(default, np.asarray(course.colorize(grey, 128)))


def test_a_working_size_past_the_cap_is_refused_with_the_range(capsys) -> None:
    assert main(["colorize", "--sample", "--size", "100000"]) == 1
    error = capsys.readouterr().err
    assert error == "colorcnn: error: --size must be 4 to 2048 px, got 100000\n"


def test_colorize_help_gives_the_default_models_own_chroma_gain(capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    gain = describe_shipped("photo")["formulation"]["chroma_gain"]
    assert main(["colorize", "--help"]) == 0
    assert f"the model's own: {gain} for photo" in capsys.readouterr().out

"""Activation pictures and run comparison, on tiny runs the tests train themselves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from colorcnn.cli import main
from colorcnn.data import DataSettings
from colorcnn.training import TrainConfig, fit


@pytest.fixture(scope="module")
def tiny_runs(tiny_cifar: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    runs = {}
    for model, epochs in (("cnn", 2), ("unet", 3)):
        config = TrainConfig(
            model=model, data=DataSettings(str(tiny_cifar), category="all"), epochs=epochs,
            batch_size=10, num_colours=6, out=str(root / model),
        )  # fmt: skip
        fit(config, show_progress=False, log=lambda _: None)
        runs[model] = root / model
    return runs


def test_activations_write_an_overview_and_one_picture_per_layer(tiny_runs, tmp_path) -> None:
    out = tmp_path / "act"
    assert main(["activations", str(tiny_runs["unet"]), "--index", "1", "-o", str(out)]) == 0
    names = sorted(path.name for path in out.iterdir())
    assert names == ["layer_out1.png", "layer_out2.png", "layer_out3.png", "layer_out4.png",
                     "layer_out5.png", "overview.png"]  # fmt: skip
    overview = Image.open(out / "overview.png")
    assert overview.size[0] > 400 and overview.size[1] > 200
    # Without -o the pictures land in the run folder.
    assert main(["activations", str(tiny_runs["cnn"])]) == 0
    assert (tiny_runs["cnn"] / "activations" / "index_0" / "overview.png").is_file()


def test_activations_of_any_image_and_a_bad_index(tiny_runs, tmp_path, capsys) -> None:
    colour = np.random.RandomState(0).randint(0, 256, (50, 70, 3), np.uint8)
    Image.fromarray(colour).save(tmp_path / "photo.png")
    out = tmp_path / "act"
    args = ["activations", str(tiny_runs["unet"]), "--image", str(tmp_path / "photo.png")]
    assert main([*args, "--size", "32", "-o", str(out)]) == 0
    assert (out / "overview.png").is_file() and (out / "layer_out3.png").is_file()
    assert main(["activations", str(tiny_runs["unet"]), "--index", "999"]) == 1
    assert "out of range; the validation set has 20 images" in capsys.readouterr().err


def test_compare_writes_a_report_with_both_runs(tiny_runs, tmp_path) -> None:
    out = tmp_path / "report"
    runs = [str(tiny_runs["cnn"]), str(tiny_runs["unet"])]
    assert main(["compare", *runs, "-o", str(out), "--epochs", "0,1,2"]) == 0
    for name in ("report.md", "report.html", "curves.png", "pictures.png"):
        assert (out / name).stat().st_size > 0, name
    markdown = (out / "report.md").read_text()
    assert "| cnn |" in markdown and "| unet |" in markdown
    header = markdown.splitlines()[2]
    assert header.startswith("| run | model | epochs trained |")  # the one setting that differs
    assert "| cnn | cnn | 2 |" in markdown and "| unet | unet | 3 |" in markdown
    assert "No picture for: cnn epoch 2" in markdown  # the cnn run stopped after 2 epochs
    assert "<table>" in (out / "report.html").read_text()


def test_compare_refuses_folders_that_are_not_runs(tmp_path, capsys) -> None:
    assert main(["compare", str(tmp_path), "-o", str(tmp_path / "out")]) == 1
    assert "is not a run folder; expected metrics.jsonl" in capsys.readouterr().err


def test_sweep_trains_each_value_and_compares_them(tiny_cifar: Path, tmp_path, capsys) -> None:
    out = tmp_path / "sweep"
    args = ["sweep", "kernel", "3,4", "--model", "cnn", "--data", str(tiny_cifar),
            "--category", "all", "--epochs", "1", "--batch-size", "10", "--out", str(out),
            "--no-progress"]  # fmt: skip
    assert main(args) == 0
    assert sorted(p.name for p in out.iterdir()) == ["kernel=3", "kernel=4", "report", "sweep.json"]
    markdown = (out / "report" / "report.md").read_text()
    assert "| kernel=3 | 3 |" in markdown and "| kernel=4 | 4 |" in markdown
    # A second call keeps finished runs instead of training them again.
    assert main(args) == 0
    assert "kernel=3: already trained (1 epochs)" in capsys.readouterr().out


def test_sweep_refuses_unknown_settings_and_bad_values(capsys) -> None:
    assert main(["sweep", "momentum", "0.9"]) == 1
    assert "cannot sweep 'momentum'" in capsys.readouterr().err
    assert main(["sweep", "batch-size", "32,abc"]) == 1
    assert "expects numbers separated by commas" in capsys.readouterr().err

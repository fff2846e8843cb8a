"""Super-resolution: the course's protocol, real upscaling over bicubic, and `upscale`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from colorcnn.cli import main
from colorcnn.color import fit_palette
from colorcnn.data import DataSettings
from colorcnn.errors import ColorcnnError
from colorcnn.formulations.superres import SuperResPalette, SuperResResidual
from colorcnn.superres import upscale as upscale_module
from colorcnn.superres.upscale import Upscaler
from colorcnn.training import TrainConfig, fit


@pytest.fixture
def images() -> torch.Tensor:
    return torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 255 / 256


def test_course_protocol_inputs_are_4x4_blocks_and_targets_full_resolution(images) -> None:
    palette = fit_palette(images, num_colours=6, seed=0)
    formulation = SuperResPalette(palette, scale=4)
    inputs = formulation.inputs(images)
    assert inputs.shape == (3, 3, 16, 16) and formulation.in_channels == 3
    block = inputs[0, :, :4, :4]
    assert torch.allclose(
        block, images[0, :, :4, :4].mean(dim=(1, 2))[:, None, None].expand(3, 4, 4)
    )
    assert formulation.targets(images).shape == (3, 16, 16)
    # The bilinear baseline of a flat image is its palette colour everywhere.
    flat = torch.full((1, 3, 16, 16), 0.5)
    baseline = formulation.baseline_rgb(flat)
    assert torch.allclose(baseline, baseline[..., :1, :1].expand_as(baseline), atol=1e-6)


def test_real_superres_learns_the_residual_over_bicubic(images) -> None:
    formulation = SuperResResidual(fit_palette(images, num_colours=6, seed=0), scale=2)
    inputs = formulation.inputs(images)
    assert torch.allclose(inputs + formulation.targets(images), images, atol=1e-6)
    zero = torch.zeros_like(images)
    assert torch.allclose(formulation.predict_rgb(zero, inputs), formulation.baseline_rgb(images))
    with pytest.raises(ColorcnnError, match="cannot be pooled by 2"):
        formulation.inputs(torch.rand(1, 3, 15, 16))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"task": "superres", "target": "palette-rgb"}, "does not fit task superres"),
        ({"target": "superres-rgb"}, "does not fit task colorize"),
        ({"task": "superres", "scale": 3}, "scale must be one of 2, 4"),
        ({"scale": 2}, "scale applies to task superres only"),
        ({"task": "enhance"}, "task must be one of colorize, superres"),
    ],
)
def test_task_settings_are_checked(overrides: dict, message: str) -> None:
    with pytest.raises(ColorcnnError, match=message):
        TrainConfig(**overrides)


@pytest.fixture(scope="module")
def superres_runs(tiny_cifar: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("superres")
    runs = {}
    for target in ("superres-palette", "superres-rgb"):
        config = TrainConfig(
            model="unet", data=DataSettings(str(tiny_cifar), category="all"), epochs=1,
            batch_size=10, num_colours=6, task="superres", target=target, out=str(root / target),
        )  # fmt: skip
        fit(config, show_progress=False, log=lambda _: None)
        runs[target] = root / target
    return runs


@pytest.mark.parametrize("target", ["superres-palette", "superres-rgb"])
def test_superres_training_scores_against_its_baseline(superres_runs, target: str) -> None:
    run = superres_runs[target]
    record = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert np.isfinite(record["psnr"]) and np.isfinite(record["psnr_baseline"])
    assert (run / "pictures" / "epoch_000.png").is_file()
    info = json.loads((run / "checkpoints" / "best.json").read_text())
    assert info["model_args"]["in_channels"] == 3
    assert info["formulation"] == {"name": target, "scale": 4}


def test_upscale_cli_keeps_alpha_and_refuses_other_models(superres_runs, tmp_path, capsys):
    rgba = np.random.RandomState(0).randint(0, 256, (7, 10, 4), np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "small.png")
    out = tmp_path / "out"
    model = str(superres_runs["superres-rgb"])
    assert main(["upscale", str(tmp_path / "small.png"), "-m", model, "-o", str(out)]) == 0
    result = Image.open(out / "small.png")
    assert result.size == (40, 28) and result.mode == "RGBA"
    args = ["upscale", str(tmp_path / "small.png"), "-o", str(tmp_path / "again")]
    assert main([*args, "-m", model, "--scale", "2"]) == 1
    assert "trained to upscale by 4" in capsys.readouterr().err
    assert main([*args, "-m", str(superres_runs["superres-palette"])]) == 1
    assert "upscaling needs a PyTorch model trained for task superres" in capsys.readouterr().err
    assert main(["colorize", str(tmp_path / "small.png"), "-m", model]) == 1
    assert "use colorcnn upscale" in capsys.readouterr().err


def test_tiles_join_without_seams(superres_runs, monkeypatch) -> None:
    upscaler = Upscaler.load(superres_runs["superres-rgb"])
    image = np.random.RandomState(1).randint(0, 256, (70, 90, 3), np.uint8)
    tiled = np.asarray(upscaler.upscale(image), dtype=np.int16)  # 280x360: several tiles
    monkeypatch.setattr(upscale_module, "TILE", 4096)
    whole = np.asarray(upscaler.upscale(image), dtype=np.int16)
    assert tiled.shape == (280, 360, 3)
    assert np.abs(tiled - whole).max() <= 1


@pytest.mark.parametrize("scale", [2, 4])
def test_upscaling_a_window_reads_only_its_part_of_the_image(scale: int) -> None:
    from colorcnn.formulations.superres import bicubic_up
    from colorcnn.superres.upscale import _bicubic_window

    low = torch.rand(1, 3, 37, 53, generator=torch.Generator().manual_seed(scale))
    full = bicubic_up(low, scale)
    height, width = full.shape[-2:]
    for y0, y1, x0, x1 in [(0, height, 0, width), (3, 41, 5, 67), (height - 9, height, 0, 7)]:
        window = _bicubic_window(low, scale, y0, y1, x0, x1)
        assert torch.equal(window, full[..., y0:y1, x0:x1]), (y0, y1, x0, x1)


def test_results_above_the_size_limit_are_refused(superres_runs, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(upscale_module, "MAX_OUTPUT_PIXELS", 100 * 100)
    Image.fromarray(np.zeros((60, 40, 3), np.uint8)).save(tmp_path / "big.png")
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "small.png")
    model = str(superres_runs["superres-rgb"])
    inputs = [str(tmp_path / "big.png"), str(tmp_path / "small.png")]
    assert main(["upscale", *inputs, "-m", model, "-o", str(tmp_path / "up")]) == 1
    captured = capsys.readouterr()
    scale = Upscaler.load(model).scale
    expected = f"would be {40 * scale}x{60 * scale} px; expected at most 10,000 pixels"
    assert expected in captured.err
    assert (tmp_path / "up" / "small.png").is_file() and not (tmp_path / "up" / "big.png").exists()

"""Super-resolution: the course's protocol, real upscaling over bicubic, and `upscale`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from colorcnn.cli import main
from colorcnn.color import fit_palette
from colorcnn.data import DataSettings
from colorcnn.errors import ColorcnnError
from colorcnn.formulations.superres import (
    SuperResLuminance,
    SuperResPalette,
    SuperResResidual,
    bicubic_up,
    luma,
)
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


# The shipped upscalers' protocol: superres-y, a network that upscales the luminance.


def _luminance_upscaler(scale: int, low_tile: int = 128, seed: int = 0) -> Upscaler:
    """An untrained superres-y upscaler whose residual is far from zero, so that a seam or
    a colour leak would show."""
    from colorcnn.models import create_model

    torch.manual_seed(seed)
    network = create_model("subpixel_net_small", scale=scale).eval()
    with torch.no_grad():
        network.to_subpixels.weight.mul_(20)
    formulation = SuperResLuminance(torch.rand(6, 3), scale=scale)
    return Upscaler(network, formulation, "test", low_tile=low_tile)


def test_luminance_protocol_shrinks_with_antialiasing_and_learns_the_residual(images) -> None:
    formulation = SuperResLuminance(fit_palette(images, num_colours=6, seed=0), scale=4)
    assert (formulation.in_channels, formulation.out_channels) == (1, 1)
    unit = images * 256 / 255
    small = F.interpolate(unit, size=(4, 4), mode="bicubic", antialias=True)
    expected = luma((small.clamp(0, 1) * 255).round() / 255)
    inputs = formulation.inputs(images)
    assert inputs.shape == (3, 1, 4, 4)
    assert torch.allclose(inputs, expected, atol=1e-6)
    # Bicubic plus the target is the true luminance; with no residual, the baseline.
    truth = luma(unit)
    bicubic = bicubic_up(inputs, 4)
    assert torch.allclose(bicubic + formulation.targets(images), truth, atol=1e-6)
    zero = torch.zeros(3, 1, 16, 16)
    assert torch.equal(formulation.predict_rgb(zero, inputs), formulation.baseline_rgb(images))
    assert torch.equal(formulation.scored_truth(unit), truth.clamp(0, 1).expand(-1, 3, -1, -1))
    with pytest.raises(ColorcnnError, match="cannot be shrunk by 4; expected sides"):
        formulation.inputs(torch.rand(1, 3, 18, 16))


def test_grey_pixels_keep_their_value_as_luminance() -> None:
    grey = torch.rand(1, 1, 5, 7).expand(-1, 3, -1, -1)
    assert torch.allclose(luma(grey), grey[:, :1], atol=1e-6)


@pytest.mark.parametrize(
    ("model", "target", "message"),
    [
        ("unet", "superres-y", "model unet keeps the image size; target superres-y needs a "
         "model that upscales \\(subpixel_net"),
        ("subpixel_net", "superres-rgb", "model subpixel_net upscales; target superres-rgb "
         "needs one that keeps it"),
    ],
)  # fmt: skip
def test_upscaling_models_and_targets_go_together(tiny_cifar, tmp_path, model, target, message):
    config = TrainConfig(
        model=model, data=DataSettings(str(tiny_cifar), category="all"), epochs=1,
        task="superres", target=target, out=str(tmp_path / "run"),
    )  # fmt: skip
    with pytest.raises(ColorcnnError, match=message):
        fit(config, show_progress=False, log=lambda _: None)
    assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def luminance_run(tiny_cifar: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("superres-y") / "run"
    config = TrainConfig(
        model="subpixel_net_small", data=DataSettings(str(tiny_cifar), category="all"),
        epochs=1, batch_size=10, num_colours=6, task="superres", target="superres-y",
        scale=2, out=str(out), precision="fp32",
    )  # fmt: skip
    fit(config, show_progress=False, log=lambda _: None)
    return out


def test_luminance_training_scores_against_bicubic_and_upscales(luminance_run, tmp_path):
    record = json.loads((luminance_run / "metrics.jsonl").read_text().splitlines()[0])
    assert np.isfinite(record["psnr"]) and np.isfinite(record["psnr_baseline"])
    assert (luminance_run / "pictures" / "epoch_000.png").is_file()
    info = json.loads((luminance_run / "checkpoints" / "best.json").read_text())
    assert info["formulation"] == {"name": "superres-y", "scale": 2}
    assert info["model_args"]["scale"] == 2 and info["model_args"]["in_channels"] == 1
    upscaler = Upscaler.load(luminance_run)
    assert upscaler.scale == 2
    image = np.random.RandomState(0).randint(0, 256, (9, 13, 3), np.uint8)
    assert upscaler.upscale(image).size == (26, 18)
    with pytest.raises(ColorcnnError, match="scale 4 does not fit .* which upscales by 2"):
        Upscaler.load(luminance_run, scale=4)


@pytest.mark.parametrize("scale", [2, 4])
def test_luminance_tiles_join_exactly(scale: int) -> None:
    image = np.random.RandomState(scale).randint(0, 256, (45, 61, 3), np.uint8)
    tiled = _luminance_upscaler(scale, low_tile=16).upscale(image)  # 3 x 4 tiles
    whole = _luminance_upscaler(scale, low_tile=4096).upscale(image)
    assert tiled.size == (61 * scale, 45 * scale)
    difference = np.abs(np.asarray(tiled, np.int16) - np.asarray(whole, np.int16))
    assert difference.max() <= 1 and (difference > 0).mean() < 1e-3  # float rounding only


def test_grey_stays_grey_colour_stays_colour_and_alpha_is_kept() -> None:
    upscaler = _luminance_upscaler(2)
    rng = np.random.RandomState(0)
    grey = rng.randint(0, 256, (20, 30), np.uint8)
    for picture in (Image.fromarray(grey, "L"), Image.fromarray(np.dstack([grey] * 3), "RGB")):
        result = np.asarray(upscaler.upscale(picture))
        assert result.shape == (40, 60, 3)
        assert np.array_equal(result[..., 0], result[..., 1])
        assert np.array_equal(result[..., 1], result[..., 2])
    colour = rng.randint(0, 256, (20, 30, 3), np.uint8)
    result = np.asarray(upscaler.upscale(colour), np.int16)
    assert np.abs(result[..., 0] - result[..., 2]).mean() > 20
    # With nothing to add, a flat colour comes back as it was: the chroma goes through.
    still = _luminance_upscaler(2)
    torch.nn.init.zeros_(still.model.to_subpixels.weight)
    flat = np.full((12, 12, 3), (200, 60, 30), np.uint8)
    assert np.abs(np.asarray(still.upscale(flat), np.int16) - flat[0, 0]).max() <= 1
    rgba = Image.fromarray(rng.randint(0, 256, (20, 30, 4), np.uint8), "RGBA")
    result = upscaler.upscale(rgba)
    assert result.mode == "RGBA" and result.size == (60, 40)
    expected_alpha = Image.fromarray(np.asarray(rgba)[..., 3]).resize((60, 40), Image.BICUBIC)
    assert np.array_equal(np.asarray(result)[..., 3], np.asarray(expected_alpha))


# The shipped upscalers: what a new user gets with no model argument.


def test_upscale_works_out_of_the_box_with_the_shipped_models(tmp_path, capsys) -> None:
    colour = np.random.RandomState(0).randint(0, 256, (12, 20, 3), np.uint8)
    Image.fromarray(colour).save(tmp_path / "photo.png")
    assert main(["upscale", str(tmp_path / "photo.png"), "-o", str(tmp_path / "big.png")]) == 0
    with Image.open(tmp_path / "big.png") as big:
        assert big.size == (80, 48) and big.mode == "RGB"  # x4 unless told
    assert "x4 with subpixel_net (superres-y x4)" in capsys.readouterr().out
    out = str(tmp_path / "twice.png")
    assert main(["upscale", str(tmp_path / "photo.png"), "--scale", "2", "-o", out]) == 0
    with Image.open(out) as twice:
        assert twice.size == (40, 24)
    capsys.readouterr()
    args = ["upscale", str(tmp_path / "photo.png"), "-o", str(tmp_path / "no.png")]
    assert main([*args, "-m", "upscale-x4", "--scale", "2"]) == 1
    error = capsys.readouterr().err.strip()
    assert "--scale 2 does not fit upscale-x4, which was trained to upscale by 4" in error
    assert len(error.splitlines()) == 1
    assert main([*args, "--scale", "3"]) == 1
    assert "scale must be one of 2, 4, got 3" in capsys.readouterr().err


def test_the_shipped_upscalers_describe_themselves_and_their_gains(capsys) -> None:
    from colorcnn.weights import describe_shipped

    assert main(["models", "upscale-*"]) == 0
    listed = capsys.readouterr().out
    for name, scale in (("upscale-x2", 2), ("upscale-x4", 4)):
        info = describe_shipped(name)
        assert info["formulation"] == {"name": "superres-y", "scale": scale}
        assert info["model_args"]["scale"] == scale
        gains = info["heldout_upscaling"]
        assert gains["split"] == "test" and gains["scale"] == scale
        assert name in listed and f"{gains['y_psnr_gain']:+.2f} dB" in listed


def test_colorize_and_upscale_in_one_go(tmp_path, capsys) -> None:
    grey = (np.add.outer(np.arange(16), np.arange(24)) * 5).astype(np.uint8)
    Image.fromarray(grey, "L").save(tmp_path / "old.png")
    out = tmp_path / "big.png"
    assert main(["colorize", str(tmp_path / "old.png"), "--upscale", "2", "-o", str(out)]) == 0
    assert "upscaled x2" in capsys.readouterr().out
    with Image.open(out) as big:
        pixels = np.asarray(big, np.int16)
    assert pixels.shape == (32, 48, 3)
    assert np.abs(pixels[..., 0] - pixels[..., 2]).max() > 0  # colourized
    assert main(["colorize", str(tmp_path / "old.png"), "--upscale", "3", "-o", str(out)]) == 1
    assert "scale must be one of 2, 4, got 3" in capsys.readouterr().err

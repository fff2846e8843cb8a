"""Evaluation and its baselines on made-up images."""

from __future__ import annotations

import pytest
import torch

from colorcnn.color.palette import nearest_colour, palette_image
from colorcnn.color.spaces import replace_lightness, true_lightness, unit_rgb
from colorcnn.errors import ColorcnnError
from colorcnn.evaluation import metrics
from colorcnn.evaluation.evaluate import TrueImages, evaluate, evaluate_baselines
from colorcnn.formulations import build_formulation
from colorcnn.models import create_model


def test_baselines_order_as_their_definitions_say() -> None:
    generator = torch.Generator().manual_seed(0)
    truth = torch.rand(6, 3, 16, 16, generator=generator) * 255 / 256
    train = torch.rand(20, 3, 16, 16, generator=generator) * 255 / 256
    palette = torch.rand(8, 3, generator=generator)
    results = evaluate_baselines(truth, train, palette, batch_size=4)
    assert set(results) == {"grey", "mean_training_colour", "course_grey"}
    # No chroma at all scores zero colourfulness.
    assert results["grey"]["colourfulness"] < 0.01  # Lab round-off only
    assert results["course_grey"]["colourfulness"] < 1e-3
    # The mean of R, G and B is the grey nearest to each pixel in RGB: no grey beats it.
    assert results["course_grey"]["psnr"] > results["grey"]["psnr"]
    for scores in results.values():
        assert 0.0 <= scores["auc"] <= 1.0 and 0.0 <= scores["val_acc"] <= 100.0


def _palette_setup():
    generator = torch.Generator().manual_seed(1)
    rgb = torch.rand(7, 3, 16, 16, generator=generator) * 255 / 256
    palette = torch.rand(6, 3, generator=generator)
    formulation = build_formulation("palette-rgb", palette)
    torch.manual_seed(0)
    model = create_model("unet", out_channels=6).eval()
    return rgb, palette, formulation, model


def test_evaluation_matches_the_scores_computed_directly() -> None:
    """Prepared true images, one arg-max per batch and the palette's chroma converted once
    must give what the definitions give, pixel by pixel, over uneven batches."""
    rgb, palette, formulation, model = _palette_setup()
    inputs, targets = formulation.inputs(rgb), formulation.training_targets(rgb)
    with torch.inference_mode():
        indices = model(inputs).argmax(dim=1)
    own = unit_rgb(palette_image(indices, palette))
    joined = replace_lightness(own, true_lightness(rgb))
    truth = unit_rgb(rgb)
    scores = evaluate(model, inputs, targets, TrueImages.prepare(rgb, palette, 3), formulation, 3)
    correct = (indices == nearest_colour(rgb, palette)[:, 0]).double().mean().item()
    assert abs(scores["val_acc"] - 100 * correct) < 1e-9
    psnr = metrics.psnr_per_image(joined, truth).mean().item()
    assert abs(scores["psnr"] - psnr) < 1e-3
    own_psnr = metrics.psnr_per_image(own, truth).mean().item()
    assert abs(evaluate(model, inputs, targets, rgb, formulation, 3, full=True)["psnr_raw"]
               - own_psnr) < 1e-4  # fmt: skip
    assert abs(scores["colourfulness"] - metrics.colourfulness(joined).mean().item()) < 1e-3
    assert abs(scores["colourfulness_truth"] - metrics.colourfulness(truth).mean().item()) < 1e-4


def test_true_images_of_another_palette_are_refused() -> None:
    rgb, palette, formulation, model = _palette_setup()
    prepared = TrueImages.prepare(rgb, palette.flip(0))
    with pytest.raises(ColorcnnError, match="another palette"):
        evaluate(model, formulation.inputs(rgb), formulation.targets(rgb), prepared, formulation)


def test_the_score_table_fits_80_columns_uncut(monkeypatch, capsys) -> None:
    from colorcnn.cli import _print_scores

    scores = {
        "val_loss": 1.3694, "val_acc": 48.4, "psnr": 24.99, "ssim": 0.9209,
        "colourfulness": 21.0, "colourfulness_gap": 10.6, "auc": 0.912, "auc_rebalanced": 0.708,
    }  # fmt: skip
    result = {
        "model": "unet", "target": "palette-rgb", "epoch": 23, "num_images": 1000,
        "category": "horse", "colourfulness_truth": 31.7, **scores,
        "baselines": {"grey": {**scores, "val_acc": 52.6}, "mean_training_colour": scores},
    }  # fmt: skip
    monkeypatch.setenv("COLUMNS", "80")
    _print_scores(result)
    printed = capsys.readouterr().out
    assert "…" not in printed and "..." not in printed
    assert max(len(line) for line in printed.splitlines()) <= 80
    for cell in ("1.3694", "0.9209", "0.708", "52.6", "fulness", "rebal."):
        assert cell in printed
    assert "val acc alone does not" in printed  # why the greys score a high accuracy

"""Evaluation baselines on made-up images."""

from __future__ import annotations

import torch

from colorcnn.evaluation.evaluate import evaluate_baselines


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

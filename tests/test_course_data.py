"""On the real CIFAR-10 copy (skipped without it): the course's horse split, and learning."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from colorcnn.color.spaces import course_grey
from colorcnn.data import DataSettings, load_course_data
from colorcnn.training import TrainConfig, fit

pytestmark = [pytest.mark.slow, pytest.mark.needs_data]


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Decoding all 60000 images takes about half a minute; do it once for this module.
    return tmp_path_factory.mktemp("cifar-cache")


def test_horse_split_has_the_course_sizes_and_scaling(cifar10_image_folder, shared_cache) -> None:
    data = load_course_data(DataSettings(str(cifar10_image_folder), "horse", 0), shared_cache)
    assert data.train_rgb.shape == (5000, 3, 32, 32)
    assert data.test_rgb.shape == (1000, 3, 32, 32)
    assert data.train_rgb.max() <= 255 / 256 and data.train_rgb.min() >= 0
    assert torch.allclose(course_grey(data.train_rgb), data.train_rgb.mean(dim=1, keepdim=True))
    again = load_course_data(DataSettings(str(cifar10_image_folder), "horse", 0), shared_cache)
    assert torch.equal(again.train_rgb, data.train_rgb)
    assert again.load_seconds < data.load_seconds


def test_one_unet_epoch_learns_colours(cifar10_image_folder, shared_cache, tmp_path) -> None:
    config = TrainConfig(
        data=DataSettings(str(cifar10_image_folder)), epochs=1, out=str(tmp_path / "unet")
    )
    history = fit(config, cache_dir=shared_cache, show_progress=False, log=lambda _: None)
    # A fresh network scores near 1/24 of the pixels; one course epoch reaches about 30%.
    assert history[0]["val_acc"] > 22.0
    assert history[0]["val_loss"] < 2.4

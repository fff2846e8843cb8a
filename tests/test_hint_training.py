"""Training with colour hints, and starting a run from another model's weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import colorcnn
from colorcnn.color.hints import HINT_CHANNELS
from colorcnn.data import DataSettings
from colorcnn.errors import SettingError
from colorcnn.models import create_model
from colorcnn.trained.checkpoint import load_checkpoint
from colorcnn.training import TrainConfig, fit
from colorcnn.training.warm_start import warm_start


def _config(data: Path, out: Path, **overrides) -> TrainConfig:
    settings = {
        "model": "cnn", "data": DataSettings(str(data), category="all"), "epochs": 1,
        "batch_size": 25, "lr": 0.01, "num_colours": 6, "target": "ab-regression",
        "out": str(out), "picture_every": 0,
    }  # fmt: skip
    return TrainConfig(**{**settings, **overrides})


def _quiet(config: TrainConfig, **options) -> list[dict]:
    return fit(config, show_progress=False, log=lambda _: None, **options)


def test_a_run_with_hints_gives_a_model_that_takes_them(tiny_cifar: Path, tmp_path) -> None:
    history = _quiet(_config(tiny_cifar, tmp_path / "hints", hints=True, picture_every=1))
    assert len(history) == 1
    assert (tmp_path / "hints" / "pictures" / "epoch_000.png").is_file()
    model = colorcnn.load_model(tmp_path / "hints")
    assert model.formulation.takes_hints and model.network.in_channels == 1 + HINT_CHANNELS
    assert load_checkpoint(tmp_path / "hints").info["formulation"]["hints"] is True


def test_hints_training_resumes_as_the_unbroken_run(tiny_cifar: Path, tmp_path) -> None:
    _quiet(_config(tiny_cifar, tmp_path / "unbroken", hints=True, epochs=2))
    _quiet(_config(tiny_cifar, tmp_path / "broken", hints=True, epochs=1))
    _quiet(_config(tiny_cifar, tmp_path / "broken", hints=True, epochs=2), resume=True)
    whole = load_checkpoint(tmp_path / "unbroken", prefer="last").model_state
    resumed = load_checkpoint(tmp_path / "broken", prefer="last").model_state
    for name, value in whole.items():
        assert torch.equal(value, resumed[name]), name  # the same hints, epoch by epoch


def test_hints_need_a_target_that_predicts_chroma(tiny_cifar: Path, tmp_path) -> None:
    with pytest.raises(SettingError, match="hints apply to target ab-bins and ab-regression"):
        _config(tiny_cifar, tmp_path / "x", target="palette-rgb", hints=True)


def test_a_run_starts_from_another_models_weights(tiny_cifar: Path, tmp_path) -> None:
    _quiet(_config(tiny_cifar, tmp_path / "plain"))
    lines: list[str] = []
    config = _config(tiny_cifar, tmp_path / "guided", hints=True, lr=1e-12,
                     init_from=str(tmp_path / "plain"))  # fmt: skip
    fit(config, show_progress=False, log=lines.append)
    assert any(line.startswith(f"Starting from {tmp_path / 'plain'}: ") for line in lines)
    plain = load_checkpoint(tmp_path / "plain").model_state
    guided = load_checkpoint(tmp_path / "guided").model_state
    # With a learning rate of nothing, the weights are still the plain run's, the first
    # convolution widened by zeros for the hint channels.
    first = "downconv1.0.weight"
    torch.testing.assert_close(guided[first][:, :1], plain[first], rtol=0, atol=1e-6)
    assert guided[first][:, 1:].abs().max() < 1e-6
    torch.testing.assert_close(guided["rfconv.0.weight"], plain["rfconv.0.weight"], atol=1e-6,
                               rtol=0)  # fmt: skip


def test_init_from_another_architecture_fails_before_the_data(tmp_path) -> None:
    config = _config(tmp_path / "no-data", tmp_path / "run", init_from="cifar-horse-unet")
    with pytest.raises(SettingError, match="init_from cifar-horse-unet is a unet model; "
                       "expected a cnn model"):  # fmt: skip
        _quiet(config)


def test_warm_start_widens_with_zeros_and_refuses_another_architecture() -> None:
    torch.manual_seed(0)
    plain = create_model("cnn", num_filters=8, out_channels=2)
    wider = create_model("cnn", num_filters=8, out_channels=2, in_channels=1 + HINT_CHANNELS)
    started = warm_start(wider, plain.state_dict())
    assert (started.widened, started.new) == (1, 0)  # only the first convolution grew
    first = wider.downconv1[0].weight
    assert torch.equal(first[:, :1], plain.downconv1[0].weight)
    assert first[:, 1:].eq(0).all()
    with pytest.raises(SettingError, match="init_from does not fit this model"):
        warm_start(create_model("cnn", num_filters=16, out_channels=2), plain.state_dict())

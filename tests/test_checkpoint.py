"""Checkpoints: safetensors + JSON round trips, and nothing is ever unpickled."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from colorcnn.errors import ColorcnnError
from colorcnn.models import create_model
from colorcnn.trained.checkpoint import build_model, load_checkpoint, save_checkpoint

INFO = {"model": "unet_small", "model_args": {}, "epoch": 3, "metrics": {"val_loss": 1.5}}


def _trained_pair() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = create_model("unet_small")
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    loss = model(torch.rand(2, 1, 32, 32)).square().mean()
    loss.backward()
    optimizer.step()
    return model, optimizer


def test_round_trip_restores_weights_optimizer_and_description(tmp_path: Path) -> None:
    model, optimizer = _trained_pair()
    info = {**INFO, "model_args": model.hyperparameters}
    save_checkpoint(tmp_path / "last", model, info, optimizer)
    assert (tmp_path / "last.safetensors").is_file()
    described = json.loads((tmp_path / "last.json").read_text())
    assert described["model"] == "unet_small" and described["epoch"] == 3

    loaded = load_checkpoint(tmp_path / "last.safetensors")
    rebuilt = build_model(loaded)
    for name, value in model.state_dict().items():
        assert torch.equal(rebuilt.state_dict()[name], value), name
    fresh = torch.optim.Adam(rebuilt.parameters(), lr=0.01)
    fresh.load_state_dict(loaded.optimizer_state)
    original_state = optimizer.state_dict()["state"]
    for index, values in fresh.state_dict()["state"].items():
        for key, value in values.items():
            assert torch.equal(value, original_state[index][key]), (index, key)
    assert loaded.torch_rng_state is not None


def test_the_tensor_file_alone_describes_the_checkpoint(tmp_path: Path) -> None:
    model, _ = _trained_pair()
    save_checkpoint(tmp_path / "best", model, {**INFO, "model_args": model.hyperparameters})
    (tmp_path / "best.json").unlink()
    loaded = load_checkpoint(tmp_path / "best.safetensors")
    assert loaded.info["epoch"] == 3 and loaded.optimizer_state is None


def test_a_pickle_is_refused_and_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    disguised = tmp_path / "evil.safetensors"
    disguised.write_bytes(pickle.dumps({"state_dict": Payload()}))
    with pytest.raises(ColorcnnError, match="not a readable safetensors checkpoint"):
        load_checkpoint(disguised)
    assert not marker.exists()


def test_safetensors_without_our_description_is_refused(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.safetensors"
    save_file({"weight": torch.zeros(2)}, str(foreign))
    with pytest.raises(ColorcnnError, match="no colorcnn description"):
        load_checkpoint(foreign)


def test_weights_of_another_architecture_are_refused_in_one_line(tmp_path: Path) -> None:
    model, _ = _trained_pair()
    save_checkpoint(tmp_path / "ckpt", model, {**INFO, "model": "cnn", "model_args": {}})
    with pytest.raises(ColorcnnError, match="do not fit model 'cnn'") as raised:
        build_model(load_checkpoint(tmp_path / "ckpt.safetensors"))
    assert "\n" not in str(raised.value)


def test_missing_checkpoint_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ColorcnnError, match="does not exist"):
        load_checkpoint(tmp_path / "nothing.safetensors")
    with pytest.raises(ColorcnnError, match="holds no checkpoints"):
        load_checkpoint(tmp_path)


def test_written_files_get_the_usual_permissions(tmp_path: Path) -> None:
    from colorcnn import files

    files.write_json(tmp_path / "a.json", {"x": 1})
    # Not mkstemp's owner-only 0600: what a plain open() would give under this umask.
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o666 & ~files._current_umask()
    assert not list(tmp_path.glob(".a.json.*"))

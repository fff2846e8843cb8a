"""The training loop on tiny data: files written, resume, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from colorcnn.data import DataSettings
from colorcnn.errors import ColorcnnError, SettingError
from colorcnn.trained.checkpoint import load_checkpoint
from colorcnn.training import TrainConfig, fit, resumed_config


def _config(data: Path, out: Path, seed: int = 0, **overrides) -> TrainConfig:
    settings = {
        "model": "unet_small", "data": DataSettings(str(data), category="all", seed=seed),
        "epochs": 1, "batch_size": 25, "lr": 0.01, "num_colours": 6, "out": str(out),
    }  # fmt: skip
    return TrainConfig(**{**settings, **overrides})


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_one_epoch_writes_metrics_pictures_and_checkpoints(
    tiny_cifar: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    lines: list[str] = []
    history = fit(_config(tiny_cifar, run), show_progress=False, log=lines.append)
    assert len(history) == 1
    records = _metrics(run)
    assert records == json.loads(json.dumps(history))
    for key in ("epoch", "train_loss", "val_loss", "val_acc", "seconds"):
        assert key in records[0]
    assert 0.0 <= records[0]["val_acc"] <= 100.0
    assert any(line.startswith("Epoch [1/1], Val Loss: ") and "Val Acc: " in line for line in lines)
    assert (run / "pictures" / "epoch_000.png").stat().st_size > 1000
    assert (run / "loss_curves.png").stat().st_size > 1000
    for name in ("last", "best"):
        assert (run / "checkpoints" / f"{name}.safetensors").is_file()
        assert (run / "checkpoints" / f"{name}.json").is_file()
    info = load_checkpoint(run, prefer="last").info
    assert info["model"] == "unet_small" and len(info["palette"]) == 6
    assert json.loads((run / "palette.json").read_text())["colours"] == info["palette"]
    assert info["data"]["data"] == str(tiny_cifar) and info["data"]["category"] == "all"
    assert info["target"] == "palette-rgb"
    # What a user of the model needs, stored: 32 px CIFAR-10 images, colourized at 32 px.
    assert (info["image_side"], info["working_size"]) == (32, 32)
    saved = json.loads((run / "config.json").read_text())
    assert saved["data"]["category"] == "all" and "category" not in saved  # nested
    assert TrainConfig.from_dict(saved) == TrainConfig.from_dict(info["train_config"])


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_resume_continues_at_the_next_epoch_and_matches_an_unbroken_run(
    tiny_cifar: Path, tmp_path: Path, precision: str
) -> None:
    unbroken = tmp_path / "unbroken"
    config = _config(tiny_cifar, unbroken, epochs=3, precision=precision)
    fit(config, show_progress=False, log=lambda _: None)

    broken = tmp_path / "broken"
    config = _config(tiny_cifar, broken, epochs=1, precision=precision)
    fit(config, show_progress=False, log=lambda _: None)
    lines: list[str] = []
    # The resumed run keeps its own precision whatever the new settings say.
    config = _config(tiny_cifar, broken, epochs=3, precision="fp32")
    fit(config, resume=True, show_progress=False, log=lines.append)
    assert lines[0].startswith(f"Resuming {broken} at epoch 2")
    assert [r["epoch"] for r in _metrics(broken)] == [0, 1, 2]

    def without_timing(records: list[dict]) -> list[dict]:
        drop = {"seconds", "train_images_per_second"}
        return [{k: v for k, v in r.items() if k not in drop} for r in records]

    assert without_timing(_metrics(broken)) == without_timing(_metrics(unbroken))
    final_a = load_checkpoint(unbroken, prefer="last").model_state
    final_b = load_checkpoint(broken, prefer="last").model_state
    for name in final_a:
        assert torch.equal(final_a[name], final_b[name]), name


def test_same_seed_gives_same_metrics_and_another_seed_does_not(
    tiny_cifar: Path, tmp_path: Path
) -> None:
    def run(seed: int, folder: str) -> list[dict]:
        history = fit(
            _config(tiny_cifar, tmp_path / folder, seed=seed, picture_every=0),
            show_progress=False, log=lambda _: None,
        )  # fmt: skip
        return [(r["train_loss"], r["val_loss"], r["val_acc"]) for r in history]

    assert run(0, "a") == run(0, "b")
    assert run(0, "a2") != run(1, "c")


def test_regression_model_trains_with_mse(tiny_cifar: Path, tmp_path: Path) -> None:
    history = fit(
        _config(tiny_cifar, tmp_path / "reg", model="regression_cnn"),
        show_progress=False, log=lambda _: None,
    )  # fmt: skip
    assert 0.0 < history[0]["val_loss"] < 1.0  # MSE of colours in [0, 1)


def test_refuses_to_overwrite_an_existing_run(tiny_cifar: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    fit(_config(tiny_cifar, run), show_progress=False, log=lambda _: None)
    with pytest.raises(ColorcnnError, match="already holds a run; pass resume to continue it"):
        fit(_config(tiny_cifar, run), show_progress=False, log=lambda _: None)


def test_resumed_config_gives_the_runs_own_settings_and_one_rule_for_the_epochs(
    tiny_cifar: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    fit(_config(tiny_cifar, run, epochs=2, kernel=5), show_progress=False, log=lambda _: None)
    moved = tmp_path / "moved"
    resumed = resumed_config(run, epochs=3, data=str(moved), device="cpu")
    assert resumed.kernel == 5 and resumed.lr == 0.01 and resumed.data.category == "all"
    assert resumed.epochs == 3 and resumed.data.data == str(moved) and resumed.out == str(run)
    assert resumed.target == "palette-rgb"  # what was trained, named
    # Nothing left to train, asked or by the run's own budget: one message, parameters named.
    for epochs in (2, None):
        with pytest.raises(SettingError, match="has trained 2 epochs .of 2 planned.; expected "
                           "epochs above 2 to continue it") as raised:  # fmt: skip
            resumed_config(run, epochs=epochs)
        assert raised.value.parameters == ["epochs"]
    with pytest.raises(SettingError, match="run_folder expects a run folder") as raised:
        resumed_config(tmp_path / "nowhere")
    assert raised.value.parameters == ["run_folder"]
    with pytest.raises(SettingError, match="has trained 2 epochs .* got 1"):
        fit(_config(tiny_cifar, run, epochs=1), resume=True, show_progress=False)


def test_a_run_of_an_earlier_version_with_flat_settings_resumes(
    tiny_cifar: Path, tmp_path: Path
) -> None:
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    run = tmp_path / "run"
    config = _config(tiny_cifar, run, seed=3, picture_every=0)
    fit(config, show_progress=False, log=lambda _: None)
    # Earlier versions held the data settings among the rest, in checkpoints and config.json.
    flat = {**config.to_dict(), **config.data.to_dict(), "a_setting_since_removed": 1}
    assert TrainConfig.from_dict(flat) == config
    last = run / "checkpoints" / "last.safetensors"
    with safe_open(str(last), "pt") as handle:
        info = json.loads(handle.metadata()["colorcnn"])
    info["train_config"] = flat
    save_file(load_file(str(last)), str(last), {"colorcnn": json.dumps(info)})
    (run / "config.json").write_text(json.dumps(flat))

    resumed = resumed_config(run, epochs=2)
    assert resumed.seed == 3 and resumed.data.category == "all" and resumed.epochs == 2
    history = fit(resumed, resume=True, show_progress=False, log=lambda _: None)
    assert [record["epoch"] for record in history] == [0, 1]
    assert json.loads((run / "config.json").read_text())["data"]["seed"] == 3


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"epochs": 0}, "epochs must be a positive integer, got 0"),
        ({"batch_size": -5}, "batch_size must be a positive integer, got -5"),
        ({"lr": 0.0}, "lr must be a positive number"),
    ],
)
def test_bad_settings_are_refused(overrides: dict, message: str, tmp_path: Path) -> None:
    with pytest.raises(SettingError, match=message) as raised:
        _config(tmp_path, tmp_path / "run", **overrides)
    assert raised.value.parameters == list(overrides)
    # The command line names its flags instead (colorcnn.cli).
    spelled = raised.value.spelled(lambda name: "--" + name.replace("_", "-"))
    assert spelled.startswith("--" + next(iter(overrides)).replace("_", "-") + " must be")


def test_bad_data_settings_are_refused_where_they_are_made(tmp_path: Path) -> None:
    with pytest.raises(SettingError, match="crop_size must be a positive integer, got 0"):
        DataSettings(dataset="photos", crop_size=0)
    with pytest.raises(SettingError, match="category applies to the cifar10 dataset only"):
        DataSettings(dataset="photos", category="cat")
    with pytest.raises(TypeError, match="data expects DataSettings, got str"):
        TrainConfig(data=str(tmp_path))  # the form of earlier versions


def test_a_palette_file_replaces_k_means(tiny_cifar: Path, tmp_path: Path) -> None:
    import numpy as np

    colours = np.linspace(0.05, 0.95, 15).reshape(5, 3)
    np.save(tmp_path / "course_palette.npy", colours)
    run = tmp_path / "run"
    config = _config(tiny_cifar, run, palette_file=str(tmp_path / "course_palette.npy"))
    fit(config, show_progress=False, log=lambda _: None)
    saved = json.loads((run / "palette.json").read_text())["colours"]
    assert np.allclose(saved, colours, atol=1e-6)
    assert load_checkpoint(run, prefer="last").model_state["finalconv.weight"].shape[0] == 5


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"regression_loss": "l1"}, "^regression_loss applies to target ab-regression only"),
        ({"temperature": 0.5, "target": "ab-regression"}, "^temperature applies to target"),
        ({"task": "superres", "target": "ab-bins"}, "^target ab-bins does not fit task superres"),
        ({"target": "lab-magic"}, "unknown target 'lab-magic'"),
    ],
)
def test_options_that_do_not_apply_are_refused(overrides, message, tmp_path: Path) -> None:
    with pytest.raises(ColorcnnError, match=message):
        _config(tmp_path, tmp_path / "run", **overrides)


def test_deterministic_mode_skips_the_nan_fill_and_the_compiler_import() -> None:
    import subprocess
    import sys

    probe = (
        "import sys, torch, torch.utils.deterministic as d\n"
        "from colorcnn.runtime import set_determinism\n"
        "set_determinism(True)\n"
        "print(torch.are_deterministic_algorithms_enabled(),"
        " torch.is_deterministic_algorithms_warn_only_enabled(),"
        " d.fill_uninitialized_memory, 'torch._inductor.config' in sys.modules)\n"
        "set_determinism(False)\n"
        "print(torch.are_deterministic_algorithms_enabled())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["True", "True", "False", "False", "False"]
    # Where the compiler is already loaded, torch's public call sets both flags.
    after_compiler = "import torch._inductor.config as c\n" + probe + "print(c.deterministic)\n"
    result = subprocess.run(
        [sys.executable, "-c", after_compiler], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["True", "True", "False", "True", "False", "False"]


def test_a_second_run_reads_its_palette_from_the_cache(
    tiny_cifar: Path, tmp_path: Path, isolated_cache: Path
) -> None:
    quiet = {"show_progress": False, "log": lambda _: None}
    fit(_config(tiny_cifar, tmp_path / "a", picture_every=0), **quiet)
    entries = {entry.name for entry in (isolated_cache / "decoded").iterdir()}
    fit(_config(tiny_cifar, tmp_path / "b", picture_every=0), **quiet)
    assert {entry.name for entry in (isolated_cache / "decoded").iterdir()} == entries
    first = json.loads((tmp_path / "a" / "palette.json").read_text())
    assert first == json.loads((tmp_path / "b" / "palette.json").read_text())
    fit(_config(tiny_cifar, tmp_path / "c", picture_every=0, seed=1), **quiet)
    assert len(list((isolated_cache / "decoded").iterdir())) == len(entries) + 1

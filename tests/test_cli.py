"""The command line: a tiny training run, resume, evaluate, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from colorcnn.cli import main

TINY = ["--model", "unet_small", "--category", "all", "--batch-size", "25", "--num-colours", "6",
        "--no-progress"]  # fmt: skip


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("colorcnn: error: "), err
    assert "\n" not in err and "Traceback" not in err, err
    return err


def test_train_resume_and_evaluate(tiny_cifar: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    run = tmp_path / "run"
    assert (
        main(["train", *TINY, "--data", str(tiny_cifar), "--epochs", "1", "--out", str(run)]) == 0
    )
    out = capsys.readouterr().out
    assert "Epoch [1/1], Val Loss: " in out
    assert "Best: epoch 1/1 (pictures/epoch_000.png)" in out
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1
    assert (run / "pictures" / "epoch_000.png").is_file()
    assert (run / "checkpoints" / "best.safetensors").is_file()

    assert main(["train", "--resume", str(run), "--epochs", "2", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "Resuming" in out and "Epoch [2/2], Val Loss: " in out and "Epoch [1/2]" not in out
    epochs = [
        json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()
    ]
    assert epochs == [0, 1]
    settings = json.loads((run / "config.json").read_text())
    assert settings["epochs"] == 2 and settings["target"] == "palette-rgb"  # what was trained

    # Nothing left to train, or settings a resumed run would ignore: said in one line, and
    # the run is untouched.
    before = (run / "metrics.jsonl").read_text()
    assert main(["train", "--resume", str(run), "--lr", "0.5", "-b", "7", "--epochs", "3"]) == 1
    assert "--batch-size, --lr cannot change with --resume" in _one_line_error(capsys)
    complete = "has trained 2 epochs (of 2 planned); expected --epochs above 2 to continue it"
    assert main(["train", "--resume", str(run), "--epochs", "2", "--no-progress"]) == 1
    assert complete + ", got 2" in _one_line_error(capsys)
    assert main(["train", "--resume", str(run), "--no-progress"]) == 1
    assert _one_line_error(capsys).endswith(complete)
    assert (run / "metrics.jsonl").read_text() == before

    # Interrupted while extending it: what it keeps, and the command that continues it.
    import colorcnn.training

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(colorcnn.training, "fit", interrupted)
    assert main(["train", "--resume", str(run), "--epochs", "4", "--no-progress"]) == 130
    err = capsys.readouterr().err
    assert f"keeps its 2 finished epoch(s); continue with: colorcnn train --resume {run} " in err
    assert "--epochs 4" in err
    monkeypatch.undo()

    assert main(["evaluate", str(run), "--checkpoint", "last", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert result["epoch"] == 1 and result["num_images"] == 20
    assert result["val_loss"] == pytest.approx(last["val_loss"], rel=1e-5)
    assert result["val_acc"] == pytest.approx(last["val_acc"], abs=1e-6)

    assert (
        main(["evaluate", str(run / "checkpoints" / "best.safetensors"), "--data", str(tiny_cifar)])
        == 0
    )
    assert "Val Acc:" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["train", "--data", "no/such/folder"], 1, "no/such/folder does not exist"),
        (["train", "--frobnicate"], 2, "No such option"),
        (["evaluate", "no/such/run"], 1, "does not exist"),
    ],
)
def test_bad_input_gives_one_clear_line(args, status, message, capsys, tmp_path) -> None:
    # More bad settings, each with its status, are in test_bad_inputs.COMMAND_CASES.
    if args[0] != "train":
        assert main(args) == status
        assert message in _one_line_error(capsys)
        return
    run = tmp_path / "new" / "run"
    assert main([*args, "--out", str(run)]) == status
    assert message in _one_line_error(capsys)
    assert not (tmp_path / "new").exists()  # a run that never started leaves no empty folders


def test_corrupt_archive_in_the_cache_is_one_line(isolated_cache: Path, tmp_path, capsys) -> None:
    isolated_cache.mkdir(parents=True)
    (isolated_cache / "cifar-10-python.tar.gz").write_bytes(b"\x1f\x8b not really gzip")
    assert main(["train", "--no-progress", "--out", str(tmp_path / "run")]) == 1
    err = _one_line_error(capsys)
    assert "MD5" in err and "by hand" in err
    assert not (tmp_path / "run").exists()


def test_console_script_help_lists_the_commands() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "colorcnn", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("train", "evaluate", "models", "download"):
        assert command in done.stdout


def test_models_lists_the_registry(capsys) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "unet" in out and "conv_transpose_net" in out and "regression" in out


def test_resume_and_out_mistakes_fail_before_any_work(tmp_path: Path, capsys) -> None:
    a_file = tmp_path / "not_a_folder"
    a_file.write_text("x")
    assert main(["train", "--resume", str(a_file), "--no-progress"]) == 1
    assert "--resume expects a run folder" in _one_line_error(capsys)
    assert main(["train", "--out", str(a_file / "run"), "--no-progress"]) == 1
    assert "cannot create the run folder" in _one_line_error(capsys)
    other = ["--out", str(tmp_path / "b"), "--no-progress"]
    assert main(["train", "--resume", str(tmp_path / "a"), *other]) == 1
    assert "name different run folders" in _one_line_error(capsys)


def test_a_damaged_checkpoint_header_is_one_line(tmp_path: Path, capsys) -> None:
    from safetensors.torch import save_file

    folder = tmp_path / "run" / "checkpoints"
    folder.mkdir(parents=True)
    header = json.dumps({"format": "colorcnn-checkpoint-v1", "model": "unet"})
    save_file({"model.x": torch.zeros(1)}, str(folder / "best.safetensors"), {"colorcnn": header})
    assert main(["evaluate", str(tmp_path / "run")]) == 1
    assert "lacks a valid 'model_args'" in _one_line_error(capsys)
    header = json.dumps(
        {"format": "colorcnn-checkpoint-v1", "model": "unet", "model_args": {"bogus": 1},
         "epoch": 0}
    )  # fmt: skip
    save_file({"model.x": torch.zeros(1)}, str(folder / "best.safetensors"), {"colorcnn": header})
    assert main(["evaluate", str(tmp_path / "run")]) == 1
    assert "lacks a valid palette" in _one_line_error(capsys)


class _Captured(Exception):
    """Raised instead of training, with the settings the command would train with."""


def test_every_training_setting_is_a_flag_whose_default_is_the_librarys(
    monkeypatch, tmp_path: Path
) -> None:
    import dataclasses

    import colorcnn.training
    from colorcnn.data import DataSettings
    from colorcnn.training import TrainConfig

    def capture(config, **_):
        raise _Captured(config)

    monkeypatch.setattr(colorcnn.training, "fit", capture)
    with pytest.raises(_Captured) as captured:
        main(["train", "--out", str(tmp_path / "run")])
    # Nothing given, nothing changed: the command passes each option on, none with a default
    # of its own.
    assert captured.value.args[0] == TrainConfig(out=str(tmp_path / "run"))

    import typer.main

    from colorcnn.cli import _flag, app

    flags = {opt for p in typer.main.get_command(app).commands["train"].params for opt in p.opts}
    settings = [f.name for f in dataclasses.fields(TrainConfig) if f.name != "data"]
    settings += [f.name for f in dataclasses.fields(DataSettings)]
    assert [name for name in settings if _flag(name) not in flags] == []


def test_sweep_trains_from_the_librarys_defaults(monkeypatch, tmp_path: Path) -> None:
    import colorcnn.training.sweep
    from colorcnn.data import DataSettings
    from colorcnn.training import TrainConfig

    def capture(base, *args, **kwargs):
        raise _Captured(base)

    monkeypatch.setattr(colorcnn.training.sweep, "run_sweep", capture)
    with pytest.raises(_Captured) as captured:
        main(["sweep", "lr", "0.1,0.01", "--out", str(tmp_path), "--seed", "4"])
    expected = TrainConfig(data=DataSettings(seed=4), out=str(tmp_path))
    assert captured.value.args[0] == expected


def test_the_librarys_parameter_names_become_flags(tiny_cifar: Path, tmp_path, capsys) -> None:
    args = ["train", "--data", str(tiny_cifar), "--out", str(tmp_path / "run")]
    assert main([*args, "--task", "superres", "--target", "ab-bins"]) == 1
    assert "error: --target ab-bins does not fit --task superres" in _one_line_error(capsys)
    assert main([*args, "--target", "ab-regression", "--temperature", "0.5"]) == 1
    assert "--temperature applies to --target ab-bins only" in _one_line_error(capsys)
    assert main([*args, "--dataset", "photos", "--category", "cat"]) == 1
    assert "--category applies to the cifar10 dataset only" in _one_line_error(capsys)


def test_an_interrupted_run_says_what_it_keeps(monkeypatch, tmp_path: Path, capsys) -> None:
    import colorcnn.training

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(colorcnn.training, "fit", interrupted)
    assert main(["train", "--out", str(tmp_path / "run"), "--no-progress"]) == 130
    err = capsys.readouterr().err
    assert "run has no finished epoch yet; nothing to resume" in err
    assert err.strip().endswith("colorcnn: interrupted")


def test_version_is_printed(capsys) -> None:
    import colorcnn

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"colorcnn {colorcnn.__version__}"

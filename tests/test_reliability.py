"""Interrupted and diverging training, tampered checkpoints."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from colorcnn.cli import main
from colorcnn.data import DataSettings
from colorcnn.errors import ColorcnnError
from colorcnn.formulations.colour import PaletteClassification
from colorcnn.trained.checkpoint import load_checkpoint
from colorcnn.training import TrainConfig, fit


def _train_command(data: Path, out: Path, epochs: int) -> list[str]:
    return [sys.executable, "-m", "colorcnn", "train", "--model", "unet", "--data", str(data),
            "--category", "all", "--epochs", str(epochs), "--batch-size", "4",
            "--num-colours", "6", "--shuffle-each-epoch", "--picture-every", "0",
            "--out", str(out), "--no-progress"]  # fmt: skip


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_equals_an_unbroken_run(tiny_cifar: Path, tmp_path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # the same kernels in every process
    epochs = 6
    unbroken = tmp_path / "unbroken"
    subprocess.run(_train_command(tiny_cifar, unbroken, epochs), env=env, check=True,
                   capture_output=True)  # fmt: skip

    broken = tmp_path / "broken"
    process = subprocess.Popen(_train_command(tiny_cifar, broken, epochs), env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    metrics = broken / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if metrics.is_file() and len(metrics.read_text().splitlines()) >= 2:
            break
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)  # during epoch 3, or while it saves epoch 2
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    finished = len(metrics.read_text().splitlines())
    assert 2 <= finished < epochs

    resume = [sys.executable, "-m", "colorcnn", "train", "--resume", str(broken), "--epochs",
              str(epochs), "--no-progress"]  # fmt: skip
    subprocess.run(resume, env=env, check=True, capture_output=True)
    for name in ("last", "best"):
        expected = load_file(unbroken / "checkpoints" / f"{name}.safetensors")
        got = load_file(broken / "checkpoints" / f"{name}.safetensors")
        assert expected.keys() == got.keys()
        assert all(torch.equal(expected[key], got[key]) for key in expected), name
    assert metrics.read_text().count("\n") == epochs
    strip = ("seconds", "train_images_per_second")
    rows = [[{k: v for k, v in json.loads(line).items() if k not in strip}
             for line in (run / "metrics.jsonl").read_text().splitlines()]
            for run in (unbroken, broken)]  # fmt: skip
    assert rows[0] == rows[1]


def test_a_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(
    tiny_cifar: Path, tmp_path: Path, monkeypatch
) -> None:
    calls = {"count": 0}
    original = PaletteClassification.loss

    def poisoned(self, outputs, targets):
        calls["count"] += 1
        loss = original(self, outputs, targets)
        return loss * float("nan") if calls["count"] > 7 else loss  # epoch 2 (5 batches each)

    monkeypatch.setattr(PaletteClassification, "loss", poisoned)
    config = TrainConfig(model="cnn", data=DataSettings(str(tiny_cifar), category="all"),
                         epochs=4, batch_size=20, num_colours=6,
                         out=str(tmp_path / "run"))  # fmt: skip
    with pytest.raises(ColorcnnError, match=r"epoch 2: the training loss became nan at batch"):
        fit(config, show_progress=False, log=lambda _: None)
    last = load_checkpoint(tmp_path / "run", prefer="last")
    assert last.info["epoch"] == 0
    assert all(torch.isfinite(t).all() for t in last.model_state.values())
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 1


def _rewrite_header(path: Path, change) -> None:
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    change(header)
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + data[8 + length :])


@pytest.fixture
def saved_run(tiny_cifar: Path, tmp_path: Path) -> Path:
    config = TrainConfig(model="cnn", data=DataSettings(str(tiny_cifar), category="all"),
                         epochs=1, batch_size=20, num_colours=6, picture_every=0,
                         out=str(tmp_path / "run"))  # fmt: skip
    fit(config, show_progress=False, log=lambda _: None)
    return tmp_path / "run" / "checkpoints" / "best.safetensors"


def test_tampered_tensor_shapes_are_refused_in_one_line(saved_run: Path, capsys) -> None:
    def reshape(header: dict) -> None:
        entry = header["model.downconv1.0.weight"]  # (32, 1, 3, 3): the bytes of (32, 9, 1, 1)
        entry["shape"] = [32, 9, 1, 1]

    _rewrite_header(saved_run, reshape)
    assert main(["evaluate", str(saved_run)]) == 1
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "do not fit model 'cnn'" in error


def test_tampered_description_is_refused_in_one_line(saved_run: Path, capsys) -> None:
    def lie(header: dict) -> None:
        for key, value in header["__metadata__"].items():
            header["__metadata__"][key] = value.replace('"model": "cnn"', '"model": "unet"')

    _rewrite_header(saved_run, lie)
    (saved_run.with_suffix(".json")).unlink()  # only the tensor file's own description
    assert main(["evaluate", str(saved_run)]) == 1
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "do not fit model 'unet'" in error

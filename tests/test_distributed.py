"""Data-parallel training: torchrun with two CPU processes (gloo) against one process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

SCRIPT = """
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors.torch import save_file

from colorcnn.training import TrainConfig, fit

out, data = Path(sys.argv[1]), sys.argv[2]
# Plain SGD instead of Adam for this comparison: Adam's first steps are sign(gradient),
# which turns rounding noise in near-zero gradients into full steps; SGD keeps the
# comparison about the gradients themselves.
torch.optim.Adam = lambda parameters, lr: torch.optim.SGD(parameters, lr=0.05)


def keep(model):
    rank = dist.get_rank() if dist.is_initialized() else 0
    state = {key: value.contiguous() for key, value in model.state_dict().items()}
    save_file(state, str(out / f"weights_rank{rank}.safetensors"))


config = TrainConfig(
    model="unet", data=data, category="all", epochs=1, batch_size=20, num_colours=6,
    shuffle_each_epoch=True, picture_every=0, out=str(out / "run"),
)
fit(config, show_progress=False, finished=keep)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _torchrun(processes: int, *args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(processes),
            "--master-addr", "127.0.0.1", "--master-port", str(_free_port()), *args]  # fmt: skip


ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.mark.slow
def test_two_processes_match_one_with_the_same_global_batch(tiny_cifar: Path, tmp_path) -> None:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    single, double = tmp_path / "single", tmp_path / "double"
    single.mkdir()
    double.mkdir()
    subprocess.run([sys.executable, str(script), str(single), str(tiny_cifar)], env=ENV,
                   check=True, capture_output=True)  # fmt: skip
    subprocess.run(_torchrun(2, str(script), str(double), str(tiny_cifar)), env=ENV,
                   check=True, capture_output=True)  # fmt: skip
    rank0 = load_file(double / "weights_rank0.safetensors")
    rank1 = load_file(double / "weights_rank1.safetensors")
    alone = load_file(single / "weights_rank0.safetensors")
    assert rank0.keys() == rank1.keys() == alone.keys()
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), f"ranks differ at {key}"
        assert torch.allclose(rank0[key].double(), alone[key].double(), atol=2e-5), key
    # Only rank 0 wrote the run, and its metrics follow the single process's.
    metrics = [
        json.loads(line) for line in (double / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    expected = [
        json.loads(line) for line in (single / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert len(metrics) == len(expected) == 1
    for got, want in zip(metrics, expected, strict=True):
        assert abs(got["train_loss"] - want["train_loss"]) < 1e-4
        assert abs(got["val_loss"] - want["val_loss"]) < 1e-4


@pytest.mark.slow
def test_torchrun_drives_the_command_line(tiny_cifar: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    finished = subprocess.run(
        _torchrun(2, "-m", "colorcnn", "train", "--data", str(tiny_cifar), "--category", "all",
                  "--epochs", "1", "--batch-size", "10", "--num-colours", "6", "--out", str(run),
                  "--no-progress"),
        env=ENV, capture_output=True, text=True,
    )  # fmt: skip
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert finished.stdout.count("Training unet") == 1  # one voice: rank 0
    assert "x 2 processes" in finished.stdout
    assert (run / "checkpoints" / "best.safetensors").is_file()

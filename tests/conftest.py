"""Shared fixtures: tiny CIFAR-10 data made on the fly, and an isolated cache folder."""

from __future__ import annotations

import os
import pickle
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
# The full datasets are not part of the repository; tests that need them look here (or in
# $COLORCNN_DATA_ROOT) and skip with a reason when they are absent.
DATA_ROOT = Path(os.environ.get("COLORCNN_DATA_ROOT", REPO_ROOT.parent / "shared" / "data"))

TINY_PER_CLASS = 2  # images per class in each tiny batch


def _tiny_images(rng: np.random.RandomState, count: int) -> np.ndarray:
    """Smooth colour gradients with noise: learnable, and not all one colour."""
    ys, xs = np.mgrid[0:32, 0:32] / 31.0
    images = np.empty((count, 32, 32, 3), dtype=np.float64)
    for index in range(count):
        base = rng.uniform(0.1, 0.9, size=3)
        slope = rng.uniform(-0.4, 0.4, size=(2, 3))
        images[index] = base + ys[..., None] * slope[0] + xs[..., None] * slope[1]
    images += rng.normal(0, 0.03, size=images.shape)
    return (np.clip(images, 0, 1) * 255).astype(np.uint8)


def write_cifar_batches(folder: Path, per_class: int = TINY_PER_CLASS, seed: int = 0) -> Path:
    """Write data_batch_1..5 and test_batch in the official pickled format into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(seed)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        labels = [label for label in range(10) for _ in range(per_class)]
        images = _tiny_images(rng, len(labels))  # (N, 32, 32, 3)
        batch = {
            b"batch_label": name.encode(),
            b"labels": labels,
            b"data": images.transpose(0, 3, 1, 2).reshape(len(labels), -1),
            b"filenames": [f"{name}_{i}.png".encode() for i in range(len(labels))],
        }
        with open(folder / name, "wb") as handle:
            pickle.dump(batch, handle, protocol=2)
    return folder


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: one thread is fastest and does not fight other work for the cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_cifar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of tiny CIFAR-10 batches: 20 train images per batch (2 per class), 20 test."""
    return write_cifar_batches(tmp_path_factory.mktemp("tiny") / "cifar-10-batches-py")


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own cache folder; the user's cache is never touched."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("COLORCNN_CACHE_DIR", str(cache))
    return cache


@pytest.fixture
def cifar10_image_folder() -> Path:
    folder = DATA_ROOT / "cifar10"
    if not (folder / "train").is_dir():
        pytest.skip(f"CIFAR-10 image folder not found at {folder} (set COLORCNN_DATA_ROOT)")
    return folder


def save_hinted_run(
    folder: Path, network, args: dict, palette, propagation: dict | None = None
) -> Path:
    """A run folder whose best checkpoint is `network` (a `cnn` built with `args`) with an
    ab-regression formulation that takes colour hints, as training would describe it;
    `propagation` changes how hints spread when decoding."""
    from colorcnn.formulations import build_formulation
    from colorcnn.trained.checkpoint import save_checkpoint

    described = build_formulation("ab-regression", palette, hints=True).describe()
    described["propagation"].update(propagation or {})
    info = {
        "model": "cnn", "model_args": args, "objective": "classification",
        "formulation": described, "palette": palette.tolist(),
        "data": {"dataset": "photos", "crop_size": 64}, "epoch": 0, "working_size": 64,
    }  # fmt: skip
    save_checkpoint(folder / "checkpoints" / "best", network, info)
    return folder


def free_port() -> int:
    """A local TCP port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_demo_server(
    log: Path, *arguments: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen, str]:
    """`colorcnn serve ARGUMENTS` on a free local port, its output in `log`; the process
    and its address once the page answers (the test fails if it does not within 2 min)."""
    port = free_port()
    with open(log, "w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "colorcnn", "serve", "--port", str(port), *arguments],
            stdout=output, stderr=subprocess.STDOUT,
            env={**os.environ, "GRADIO_TEMP_DIR": str(log.parent / "gradio"), **(env or {})},
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return process, url
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"colorcnn serve did not start:\n{log.read_text()}")
            time.sleep(0.5)

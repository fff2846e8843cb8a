"""ONNX export: dynamic sizes, equal to PyTorch, and usable by colorize."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from colorcnn.cli import main
from colorcnn.data import DataSettings
from colorcnn.errors import ColorcnnError
from colorcnn.inference import Colorizer
from colorcnn.trained.checkpoint import build_model, load_checkpoint
from colorcnn.training import TrainConfig, fit

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")


@pytest.fixture(scope="module")
def exported(tiny_cifar: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    run = tmp_path_factory.mktemp("onnx") / "run"
    config = TrainConfig(
        model="unet_small", data=DataSettings(str(tiny_cifar), category="all"), epochs=1,
        batch_size=50, num_colours=6, target="ab-bins", out=str(run), picture_every=0,
    )  # fmt: skip
    fit(config, show_progress=False, log=lambda _: None)
    onnx_path = run.parent / "model.onnx"
    assert main(["export", "onnx", str(run), "-o", str(onnx_path)]) == 0
    return run, onnx_path


@pytest.mark.parametrize("shape", [(1, 1, 32, 32), (3, 1, 48, 80), (1, 1, 124, 64)])
def test_onnx_matches_pytorch_at_any_size(exported, shape) -> None:
    from colorcnn.trained.onnx_runtime import OnnxModel

    run, onnx_path = exported
    torch_model = build_model(load_checkpoint(run)).eval()
    inputs = torch.rand(*shape, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        expected = torch_model(inputs)
    got = OnnxModel(onnx_path)(inputs)
    assert got.shape == expected.shape
    assert (got - expected).abs().max().item() <= 1e-4


def test_colorize_with_the_onnx_backend_matches_torch(exported, tmp_path: Path) -> None:
    run, onnx_path = exported
    ys, xs = np.mgrid[0:70, 0:90]
    grey = Image.fromarray(((xs + ys) * 255 / 160).astype(np.uint8), "L")
    with_torch = np.asarray(Colorizer.load(run).colorize(grey, 32), dtype=int)
    with_onnx = np.asarray(Colorizer.load(onnx_path, "onnx").colorize(grey, 32), dtype=int)
    assert with_onnx.shape == (70, 90, 3)
    assert np.abs(with_torch - with_onnx).max() <= 1  # rounding of 8-bit output only


def test_onnx_backend_refuses_other_files(exported, tmp_path: Path) -> None:
    run, _ = exported
    with pytest.raises(ColorcnnError, match="needs an .onnx file"):
        Colorizer.load(run, "onnx")
    (tmp_path / "fake.onnx").write_bytes(b"not a model")
    with pytest.raises(ColorcnnError, match="not a readable ONNX model"):
        Colorizer.load(tmp_path / "fake.onnx")


def test_export_refuses_other_suffixes_and_keeps_existing_files(exported, tmp_path, capsys):
    run, onnx_path = exported
    assert main(["export", "onnx", str(run), "-o", str(tmp_path / "model.onx")]) == 1
    assert "--output must end in .onnx" in capsys.readouterr().err
    before = onnx_path.read_bytes()
    assert main(["export", "onnx", str(run), "-o", str(onnx_path)]) == 1
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert onnx_path.read_bytes() == before
    assert main(["export", "onnx", str(run), "-o", str(onnx_path), "--overwrite"]) == 0


@pytest.mark.slow
def test_the_shipped_photo_model_exports_with_sides_in_steps_of_32(tmp_path: Path) -> None:
    from colorcnn.trained.onnx_runtime import OnnxModel

    onnx_path = tmp_path / "photo.onnx"
    assert main(["export", "onnx", "photo", "-o", str(onnx_path)]) == 0
    torch_model = build_model(load_checkpoint("photo")).eval()
    exported = OnnxModel(onnx_path)
    channels = torch_model.in_channels  # the lightness and three hint channels
    for batch, height, width in [(1, 64, 96), (2, 160, 128)]:
        shape = (batch, channels, height, width)
        inputs = torch.rand(*shape, generator=torch.Generator().manual_seed(1))
        with torch.inference_mode():
            expected = torch_model(inputs)
        assert (exported(inputs) - expected).abs().max().item() <= 1e-4

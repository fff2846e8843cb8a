"""`colorcnn.load_model`: the one home of a trained model, for every kind of source."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import colorcnn
from colorcnn.cli import main
from colorcnn.errors import ColorcnnError
from colorcnn.formulations import build_formulation
from colorcnn.inference import Colorizer
from colorcnn.models import create_model
from colorcnn.trained.checkpoint import save_checkpoint

PALETTE = torch.linspace(0, 0.99, 18).reshape(6, 3)  # six colours on the course's scale


def _has_batch_norm(network: nn.Module) -> bool:
    return any(isinstance(module, nn.BatchNorm2d) for module in network.modules())


def _save_run(
    folder: Path,
    *,
    target: str = "palette-rgb",
    data: dict | None = None,
    sizes: dict | None = None,
    seed: int = 0,
) -> nn.Module:
    """A run folder with best and last checkpoints of a small CNN (different weights), as
    `colorcnn train` writes them; returns the network saved as best."""
    formulation = build_formulation(target, PALETTE, scale=2 if "superres" in target else None)
    info = {
        "model": "cnn",
        "model_args": {
            "num_filters": 4,
            "in_channels": formulation.in_channels,
            "out_channels": formulation.out_channels,
        },
        "objective": "classification",
        "formulation": formulation.describe(),
        "palette": PALETTE.tolist(),
        "data": data or {"dataset": "cifar10", "category": "horse"},
        "epoch": 0,
        **(sizes or {}),
    }
    networks = []
    for name in ("best", "last"):
        torch.manual_seed(seed + len(networks))
        network = create_model("cnn", **info["model_args"])
        with torch.no_grad():  # batch norm statistics that folding must carry over
            for module in network.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.running_mean.uniform_(-0.5, 0.5)
                    module.running_var.uniform_(0.5, 2.0)
        save_checkpoint(folder / "checkpoints" / name, network, info)
        networks.append(network)
    return networks[0]


def test_a_shipped_name_loads_folded_and_ready() -> None:
    model = colorcnn.load_model("cifar-horse-unet")
    assert isinstance(model, colorcnn.TrainedModel)
    assert (model.runtime, model.task, model.architecture) == ("torch", "colorize", "unet")
    assert model.formulation.name == "palette-rgb" and tuple(model.palette.shape) == (24, 3)
    assert (model.image_side, model.working_size, model.size_multiple) == (32, 32, 4)
    assert not model.network.training
    assert not _has_batch_norm(model.network)  # folded into the convolutions
    assert _has_batch_norm(colorcnn.load_model("cifar-horse-unet", fold=False).network)
    assert model.name == "unet (palette-rgb, torch)"


def test_the_shipped_photo_model_keeps_its_stored_sizes_and_gain() -> None:
    model = colorcnn.load_model("photo")
    assert (model.image_side, model.working_size) == (96, 160)  # crops; measured at shipping
    assert model.formulation.chroma_gain == pytest.approx(1.2)
    assert colorcnn.load_model("photo", chroma_gain=1.0).formulation.chroma_gain == 1.0


def test_a_run_folder_and_its_checkpoints_load_the_same_network(tmp_path: Path) -> None:
    saved = _save_run(tmp_path / "run").eval()
    inputs = torch.rand(2, 1, 16, 16)
    expected = saved(inputs)
    for source in (tmp_path / "run", tmp_path / "run" / "checkpoints" / "best.safetensors"):
        model = colorcnn.load_model(source)
        assert model.source == tmp_path / "run" / "checkpoints" / "best.safetensors"
        with torch.inference_mode():
            torch.testing.assert_close(model.network(inputs), expected, rtol=1e-4, atol=1e-5)
    last = colorcnn.load_model(tmp_path / "run", prefer="last")
    assert last.source.name == "last.safetensors"
    with torch.inference_mode():
        assert not torch.allclose(last.network(inputs), expected)


def test_sizes_are_read_where_stored_and_derived_for_earlier_checkpoints(tmp_path: Path) -> None:
    photos = {"dataset": "photos", "crop_size": 64}
    _save_run(tmp_path / "old", data=photos)  # written before checkpoints stored sizes
    old = colorcnn.load_model(tmp_path / "old")
    assert (old.image_side, old.working_size) == (64, 128)
    _save_run(tmp_path / "new", data=photos, sizes={"image_side": 64, "working_size": 96})
    new = colorcnn.load_model(tmp_path / "new")
    assert (new.image_side, new.working_size) == (64, 96)
    assert new.data_settings().crop_size == 64
    assert new.data_settings(data="elsewhere").data == "elsewhere"


def test_a_checkpoint_without_a_formulation_gets_its_objectives_default(tmp_path: Path) -> None:
    from colorcnn.trained.checkpoint import load_checkpoint

    _save_run(tmp_path / "run")
    checkpoint = load_checkpoint(tmp_path / "run")
    del checkpoint.info["formulation"]  # as the first checkpoints were written
    network = create_model("cnn", **checkpoint.info["model_args"])
    save_checkpoint(tmp_path / "early" / "checkpoints" / "best", network, checkpoint.info)
    assert colorcnn.load_model(tmp_path / "early").formulation.name == "palette-rgb"


def test_a_super_resolution_model_loads_and_colorize_refuses_it(tmp_path: Path) -> None:
    _save_run(tmp_path / "sr", target="superres-rgb")
    model = colorcnn.load_model(tmp_path / "sr")
    assert model.task == "superres" and model.formulation.scale == 2
    with pytest.raises(ColorcnnError, match="is a super-resolution model"):
        Colorizer.from_model(model)


def test_bad_requests_name_the_parameter(tmp_path: Path) -> None:
    with pytest.raises(ColorcnnError, match="prefer must be 'best' or 'last', got 'worst'"):
        colorcnn.load_model("cifar-horse-unet", prefer="worst")
    with pytest.raises(ColorcnnError, match="chroma_gain applies to ab-regression"):
        colorcnn.load_model("cifar-horse-unet", chroma_gain=1.5)
    with pytest.raises(ColorcnnError, match="temperature applies to ab-bins"):
        colorcnn.load_model("cifar-horse-unet", temperature=0.5)
    with pytest.raises(ColorcnnError, match="no shipped model, run folder or checkpoint"):
        colorcnn.load_model("no-such-model")
    with pytest.raises(ColorcnnError, match="does not exist"):
        colorcnn.load_model(tmp_path / "missing" / "best.safetensors")


@pytest.mark.slow
def test_an_exported_onnx_file_loads_as_the_same_model(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from colorcnn.inference.onnx import export_onnx

    path = export_onnx("cifar-horse-cnn", tmp_path / "cnn.onnx")
    exported, original = colorcnn.load_model(path), colorcnn.load_model("cifar-horse-cnn")
    assert (exported.runtime, exported.source) == ("onnx", path)
    assert exported.name == "cnn (palette-rgb, onnx)"
    assert (exported.image_side, exported.working_size, exported.size_multiple) == (32, 32, 4)
    inputs = torch.rand(1, 1, 32, 48)
    with torch.inference_mode():
        torch.testing.assert_close(
            exported.network(inputs), original.network(inputs), rtol=1e-3, atol=1e-3
        )


def test_compare_and_summary_take_shipped_names(tmp_path: Path, capsys) -> None:
    out = tmp_path / "report"
    assert main(["compare", "cifar-horse-cnn", "cifar-horse-unet", "-o", str(out)]) == 0
    markdown = (out / "report.md").read_text()
    assert "| cifar-horse-cnn | cnn |" in markdown and "| cifar-horse-unet | unet |" in markdown
    assert (out / "curves.png").is_file()
    capsys.readouterr()
    assert main(["summary", "cifar-horse-unet", "--json"]) == 0
    assert '"totals"' in capsys.readouterr().out


def test_the_docstring_example_holds() -> None:
    import doctest

    from colorcnn.trained import model as module

    failed, tried = doctest.testmod(module, raise_on_error=False, verbose=False)
    assert tried >= 2 and failed == 0

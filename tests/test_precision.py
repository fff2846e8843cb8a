"""Mixed precision: which one `auto` picks, and that bf16 changes speed, not results."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from colorcnn import runtime
from colorcnn.cli import app
from colorcnn.data import DataSettings
from colorcnn.errors import SettingError
from colorcnn.inference import Colorizer
from colorcnn.training import TrainConfig, fit
from colorcnn.training.config import continued_config

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    ("flags", "native"),
    [
        ({"avx2", "fma"}, False),  # AVX2 only (e.g. AMD EPYC before Zen 4): emulated
        ({"avx2", "avx512f", "avx512_vnni"}, False),  # AVX-512 without its bf16 part
        ({"avx2", "avx512f", "avx512_bf16"}, True),  # Cooper Lake, Zen 4
        ({"avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"}, True),  # Sapphire Rapids
    ],
)
def test_auto_is_bf16_only_where_the_cpu_computes_it(monkeypatch, flags, native) -> None:
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset(flags))
    assert runtime.native_bf16() is native
    assert runtime.resolve_precision("auto", CPU) == ("bf16" if native else "fp32")
    # What is asked for by name is what runs, emulated or not.
    assert runtime.resolve_precision("bf16", CPU) == "bf16"
    assert runtime.resolve_precision("fp32", CPU) == "fp32"
    assert runtime.cpu_capabilities()["native_bf16"] is native


def test_a_onednn_cap_below_bf16_makes_auto_fp32(monkeypatch) -> None:
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"avx512f", "amx_bf16"}))
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert runtime.resolve_precision("auto", CPU) == "fp32"
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_AMX")
    assert runtime.resolve_precision("auto", CPU) == "bf16"


def test_this_machine_reports_its_capabilities() -> None:
    capabilities = runtime.cpu_capabilities()
    assert capabilities["torch_kernels"] == torch.backends.cpu.get_cpu_capability()
    if capabilities["amx_bf16"] or capabilities["avx512_bf16"]:
        assert capabilities["native_bf16"]


def test_fp16_and_unknown_precisions_are_refused_on_a_cpu() -> None:
    with pytest.raises(SettingError, match="precision fp16 runs on CUDA only, got device cpu"):
        runtime.resolve_precision("fp16", CPU)
    with pytest.raises(SettingError, match="precision must be one of auto, fp32, bf16, fp16"):
        runtime.resolve_precision("half", CPU)


def test_autocast_computes_convolutions_in_the_precision_and_fp32_changes_nothing() -> None:
    conv = torch.nn.Conv2d(1, 2, 3)
    x = torch.rand(1, 1, 8, 8)
    with runtime.autocast(CPU, "fp32"):
        assert conv(x).dtype == torch.float32
    with runtime.autocast(CPU, "bf16"):
        assert conv(x).dtype == torch.bfloat16


def _config(data: Path, out: Path, **overrides) -> TrainConfig:
    settings = {
        "model": "unet_small", "data": DataSettings(str(data), category="all"), "epochs": 1,
        "batch_size": 25, "lr": 0.01, "num_colours": 6, "out": str(out), "picture_every": 0,
    }  # fmt: skip
    return TrainConfig(**{**settings, **overrides})


def test_a_run_stores_the_precision_auto_resolved_to(tiny_cifar: Path, tmp_path: Path) -> None:
    lines: list[str] = []
    fit(_config(tiny_cifar, tmp_path / "run"), show_progress=False, log=lines.append)
    resolved = runtime.resolve_precision("auto", CPU)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["precision"] == resolved in ("fp32", "bf16")
    assert f"cpu, {resolved}, data ready" in lines[0]


def test_runs_from_before_mixed_precision_continue_in_fp32() -> None:
    settings = TrainConfig().to_dict()
    del settings["precision"]
    info = {"train_config": settings, "epoch": 0}
    assert continued_config(info, "runs/old", epochs=5).precision == "fp32"


def test_bf16_training_scores_like_fp32(tiny_cifar: Path, tmp_path: Path) -> None:
    """The same seed in both precisions: the losses stay close (the loss itself is fp32)."""
    histories = {
        precision: fit(
            _config(tiny_cifar, tmp_path / precision, epochs=2, precision=precision),
            show_progress=False,
            log=lambda _: None,
        )  # fmt: skip
        for precision in ("fp32", "bf16")
    }
    for ours, reference in zip(histories["bf16"], histories["fp32"], strict=True):
        assert ours["train_loss"] == pytest.approx(reference["train_loss"], rel=0.05)
        assert ours["val_loss"] == pytest.approx(reference["val_loss"], rel=0.05)
        assert abs(ours["psnr"] - reference["psnr"]) < 0.5


def test_the_shipped_photo_model_colours_alike_in_bf16_and_fp32() -> None:
    from colorcnn.inference.colorize import sample_photos

    photo = sample_photos()[0]
    pictures = {
        precision: np.asarray(Colorizer.load("photo", precision=precision).colorize(photo))
        for precision in ("fp32", "bf16")
    }
    difference = pictures["bf16"].astype(float) - pictures["fp32"].astype(float)
    # The two agree to 44 dB here (mean 1 level of 255); a network run wrongly in bf16 (an
    # fp16-like overflow, a palette or loss in bf16) would be off by tens of levels.
    assert 10 * np.log10(255**2 / np.mean(difference**2)) > 38
    assert np.abs(difference).any()  # bf16 did run


def test_the_command_line_takes_precision_and_refuses_what_cannot_run(
    tmp_path: Path, capsys
) -> None:
    from PIL import Image

    from colorcnn.cli import main

    grey = tmp_path / "grey.png"
    Image.fromarray(np.full((40, 50), 120, dtype=np.uint8)).save(grey)
    done = main(["colorize", str(grey), "-o", str(tmp_path / "out.png"), "--precision", "fp32",
                 "--no-progress"])  # fmt: skip
    assert done == 0 and (tmp_path / "out.png").is_file()
    capsys.readouterr()
    refused = main(["colorize", str(grey), "-o", str(tmp_path / "no.png"), "--precision",
                    "fp16", "--no-progress"])  # fmt: skip
    error = capsys.readouterr().err.strip()
    assert refused == 1 and not (tmp_path / "no.png").exists()
    assert error.count("\n") == 0
    assert "--precision fp16 runs on CUDA only, got device cpu" in error
    help_text = CliRunner().invoke(app, ["train", "--help"], terminal_width=200).output
    assert "--precision" in help_text and "AVX512-BF16" in help_text


def test_an_epoch_with_a_gradient_scaler_steps_and_keeps_the_loss_in_fp32() -> None:
    """fp16 runs on CUDA only; its scaler's path through the epoch is the same on a CPU."""
    from colorcnn.color import fit_palette
    from colorcnn.formulations import build_formulation
    from colorcnn.models import create_model
    from colorcnn.training.loop import train_one_epoch

    torch.manual_seed(0)
    rgb = torch.rand(8, 3, 16, 16)
    palette = fit_palette(rgb, num_colours=4, seed=0)
    formulation = build_formulation("palette-rgb", palette, train_rgb=rgb)
    model = create_model("unet_small", out_channels=4)
    before = [weight.detach().clone() for weight in model.parameters()]
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    loss = train_one_epoch(
        model, optimizer, formulation.inputs(rgb), formulation.training_targets(rgb),
        formulation, 4, precision="bf16", scaler=scaler,
    )  # fmt: skip
    assert isinstance(loss, float) and 0 < loss < 10
    assert scaler.get_scale() == 1024.0  # no overflow, so no step was skipped
    moved = [not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True)]
    assert all(moved)


def test_a_cuda_fp16_run_is_not_continued_on_a_cpu_in_another_precision() -> None:
    from colorcnn.training.loop import _resolved_precision

    config = TrainConfig(precision="fp16", out="runs/gpu")
    with pytest.raises(SettingError, match="runs/gpu trained in fp16 on CUDA; expected device"):
        _resolved_precision(config, resumed=True, device=CPU)
    assert _resolved_precision(TrainConfig(precision="bf16"), resumed=True, device=CPU) == "bf16"


def test_evaluation_scores_in_the_runs_own_precision_unless_told(
    tiny_cifar: Path, tmp_path: Path
) -> None:
    from colorcnn.evaluation.evaluate import _scoring_precision, evaluate_checkpoint

    run = tmp_path / "run"
    fit(_config(tiny_cifar, run, precision="fp32"), show_progress=False, log=lambda _: None)
    scores = evaluate_checkpoint(run, prefer="last", baselines=False, show_progress=False)
    assert scores["precision"] == "fp32"
    trained = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert scores["val_loss"] == pytest.approx(trained["val_loss"], rel=1e-5)  # training's
    told = evaluate_checkpoint(
        run, prefer="last", baselines=False, show_progress=False, precision="bf16"
    )
    assert told["precision"] == "bf16"
    # Runs from before mixed precision were fp32; an fp16 run is scored in fp32 on a CPU.
    assert _scoring_precision(None, {"train_config": {}}, CPU) == "fp32"
    assert _scoring_precision(None, {"train_config": {"precision": "fp16"}}, CPU) == "fp32"
    with pytest.raises(SettingError, match="fp16 runs on CUDA only"):
        _scoring_precision("fp16", {}, CPU)


def test_synchronised_batch_norm_computes_in_fp32_and_keeps_the_input_type() -> None:
    from colorcnn.training.distributed import Fp32SyncBatchNorm

    torch.manual_seed(0)
    shared, reference = Fp32SyncBatchNorm(3), torch.nn.BatchNorm2d(3)
    x = (torch.randn(4, 3, 5, 5) * 4 + 100).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = shared(x)  # without a process group it normalizes this batch alone
    assert output.dtype == torch.bfloat16
    torch.testing.assert_close(output.float(), reference(x.float()), atol=0.02, rtol=0.01)
    torch.testing.assert_close(shared.running_mean, reference.running_mean)

"""Training, evaluation and colourizing speed on this machine, in fp32 and bf16, against a
plain eager PyTorch reference.

Usage:
    python benchmarks/speed.py [--steps 20] [--threads N] [--kind NAME]

In one run, on the same machine:

- the CPU's capabilities (torch's kernel level, AVX-512, AVX512-BF16, AMX) and what
  `--precision auto` resolves to;
- the fp32 and bf16 matrix-multiply rates (GFLOP/s, 2048^3), measured before and after
  every model's steps;
- for the course UNet, the course CNN (32 px, batch 100, palette targets) and the
  PhotoUNet (128 px crops, batch 64, ab-regression), training steps of (a) a plain eager
  fp32 loop (NCHW, Adam, no compilation), (b) colorcnn's own step
  (`colorcnn.training.loop.train_one_epoch`: channels-last, fused Adam, deterministic
  kernels) in fp32 and (c) the same in bf16 autocast, taking turns step by step;
- evaluation of the same networks (the plain eager forward pass and loss, then
  `colorcnn.evaluation.evaluate` in fp32 and bf16, metrics included);
- colourizing a grey JPEG of 1 and 12 megapixels with the shipped `photo` model, read to
  written, warm: a plain eager pipeline (kornia's Lab conversions on the whole picture, the
  network in fp32), then `Colorizer` in fp32 and bf16.

Results go into docs/results.md, in a section per machine kind (`--kind`, by default from
the CPU: amx, avx512-bf16, avx512 or avx2), and benchmarks/results/speed-KIND.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe_machine, replace_section, save_results  # noqa: E402

from colorcnn.color import fit_palette  # noqa: E402
from colorcnn.evaluation.evaluate import TrueImages, evaluate  # noqa: E402
from colorcnn.formulations import build_formulation  # noqa: E402
from colorcnn.inference import Colorizer  # noqa: E402
from colorcnn.inference.images import read_image, save_image  # noqa: E402
from colorcnn.models import create_model  # noqa: E402
from colorcnn.runtime import (  # noqa: E402
    cpu_capabilities,
    fast_layout,
    resolve_precision,
    set_determinism,
)
from colorcnn.training.loop import train_one_epoch  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
CASES = (  # model, side, batch, target
    ("unet", 32, 100, "palette-rgb"),
    ("cnn", 32, 100, "palette-rgb"),
    ("photo_unet", 128, 64, "ab-regression"),
)
PATHS = ("reference", "fp32", "bf16")  # (a), (b), (c)
ROUNDS = 5  # rounds of steps taking turns, each between matmul measurements
PHOTO_SIZES = {"1 MP": (1155, 866), "12 MP": (4000, 3000)}
COLORIZE_REPEATS = 3


def machine_kind() -> str:
    capabilities = cpu_capabilities()
    if capabilities["amx_bf16"]:
        return "amx"
    if capabilities["avx512_bf16"]:
        return "avx512-bf16"
    return "avx512" if capabilities["avx512"] else "avx2"


def matmul_gflops(dtype: torch.dtype, size: int = 2048, repeats: int = 6) -> float:
    a, b = torch.rand(size, size, dtype=dtype), torch.rand(size, size, dtype=dtype)
    torch.mm(a, b)
    started = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    return 2 * size**3 * repeats / (time.perf_counter() - started) / 1e9


def matmul_rates() -> dict[str, float]:
    return {"fp32": matmul_gflops(torch.float32), "bf16": matmul_gflops(torch.bfloat16)}


def reference_step(model, inputs, targets, loss_fn, batch: int):
    """A plain training loop as anyone would write it; returns its step(index)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()

    def step(index: int) -> None:
        part = slice((index * batch) % len(inputs), (index * batch) % len(inputs) + batch)
        optimizer.zero_grad()
        loss_fn(model(inputs[part]), targets[part]).backward()
        optimizer.step()

    return step


def project_step(model, inputs, targets, formulation, batch: int, precision: str):
    """What `colorcnn train` runs: its memory layout and fused Adam, then its epoch
    function over one batch in `precision`; returns its step(index)."""
    model, inputs = fast_layout(model), fast_layout(inputs)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)

    def step(index: int) -> None:
        part = slice((index * batch) % len(inputs), (index * batch) % len(inputs) + batch)
        train_one_epoch(
            model, optimizer, inputs[part], targets[part], formulation, batch,
            precision=precision,
        )  # fmt: skip

    return step


def timed(step, index: int, deterministic: bool) -> float:
    """Seconds of one step; `colorcnn train` runs deterministic kernels by default, the
    reference torch's defaults."""
    set_determinism(deterministic)
    started = time.perf_counter()
    step(index)
    return time.perf_counter() - started


def training_and_evaluation(name: str, side: int, batch: int, target: str, steps: int) -> dict:
    images = batch * steps
    rgb = torch.rand(images, 3, side, side) * 255 / 256
    palette = fit_palette(rgb[:50], num_colours=24, seed=0)
    formulation = build_formulation(target, palette, train_rgb=rgb[:50])
    inputs, targets = formulation.inputs(rgb), formulation.training_targets(rgb)

    def fresh():
        torch.manual_seed(0)
        return create_model(name, out_channels=formulation.out_channels)

    steppers = {
        "reference": reference_step(fresh(), inputs, targets, formulation.loss, batch),
        "fp32": project_step(fresh(), inputs, targets, formulation, batch, "fp32"),
        "bf16": project_step(fresh(), inputs, targets, formulation, batch, "bf16"),
    }
    for path, step in steppers.items():  # warm-up
        timed(step, 0, path != "reference")
    times: dict[str, list[float]] = {path: [] for path in PATHS}
    rates = [matmul_rates()]
    per_round = max(1, steps // ROUNDS)
    for round_index in range(ROUNDS):
        for turn in range(per_round):
            index = round_index * per_round + turn
            order = PATHS if index % 2 == 0 else PATHS[::-1]  # neither always goes first
            for path in order:
                times[path].append(timed(steppers[path], index, path != "reference"))
        rates.append(matmul_rates())
    set_determinism(False)
    row: dict = {"model": name, "side": side, "batch": batch, "target": target}
    for path in PATHS:
        row[f"train_{path}_images_per_s"] = batch / statistics.median(times[path])
    for path in ("fp32", "bf16"):
        row[f"train_{path}_x_reference"] = statistics.median(
            [a / b for a, b in zip(times["reference"], times[path], strict=True)]
        )

    # Evaluation: the plain forward pass and loss in eval mode, and evaluate() as training
    # runs it after each epoch (channels-last, batch norm folded, metrics included).
    plain = fresh().eval()
    model, layout_inputs = fast_layout(fresh().eval()), fast_layout(inputs)
    truth = TrueImages.prepare(rgb, formulation.palette, batch)

    def plain_evaluation() -> None:
        with torch.no_grad():
            for start in range(0, len(inputs), batch):
                formulation.loss(
                    plain(inputs[start : start + batch]), targets[start : start + batch]
                )

    evaluations = {
        "reference": plain_evaluation,
        "fp32": lambda: evaluate(model, layout_inputs, targets, truth, formulation, batch),
        "bf16": lambda: evaluate(
            model, layout_inputs, targets, truth, formulation, batch, precision="bf16"
        ),
    }
    evaluation_times: dict[str, list[float]] = {path: [] for path in PATHS}
    for turn in range(4):
        for path in PATHS if turn % 2 == 0 else PATHS[::-1]:
            started = time.perf_counter()
            evaluations[path]()
            if turn:  # the first turn warms up
                evaluation_times[path].append(time.perf_counter() - started)
    rates.append(matmul_rates())
    for path in PATHS:
        row[f"evaluate_{path}_images_per_s"] = images / statistics.median(evaluation_times[path])
    row["matmul"] = rates
    return row


def reference_colorize(trained, source: Path, target: Path) -> None:
    """Colourizing as anyone would write it with kornia: the whole picture to Lab, the
    network in fp32 at the working size, its chroma upsampled, the whole Lab back to RGB."""
    import kornia
    from PIL import Image

    grey = np.asarray(Image.open(source).convert("RGB"), dtype=np.float32) / 255
    rgb = torch.from_numpy(grey).permute(2, 0, 1)[None]
    lightness = kornia.color.rgb_to_lab(rgb)[:, :1]
    height, width = rgb.shape[-2:]
    scale, multiple = trained.working_size / min(height, width), trained.size_multiple
    shape = [max(multiple, round(side * scale / multiple) * multiple) for side in (height, width)]
    small = F.interpolate(rgb, size=shape, mode="bicubic", antialias=True)
    formulation = trained.formulation
    with torch.no_grad():
        inputs = formulation.inputs(small.clamp(0, 1) * 255 / 256)
        ab = formulation.predict_chroma(trained.network(inputs), inputs, None)
    ab = F.interpolate(ab, size=(height, width), mode="bilinear", align_corners=False)
    out = kornia.color.lab_to_rgb(torch.cat((lightness, ab), dim=1)).clamp(0, 1)
    pixels = (out[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    Image.fromarray(pixels).save(target, quality=95)


def colorize_speed() -> list[dict]:
    from PIL import Image

    from colorcnn.trained import load_model

    unfolded = load_model("photo", fold=False)
    colorizers = {precision: Colorizer.load("photo", precision=precision)
                  for precision in ("fp32", "bf16")}  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, (width, height) in PHOTO_SIZES.items():
            source, target = Path(tmp) / "grey.jpg", Path(tmp) / "out.jpg"
            noise = np.random.RandomState(0).rand(48, 64) * 255  # smooth random structure
            Image.fromarray(noise.astype(np.uint8)).resize(
                (width, height), Image.Resampling.BICUBIC
            ).save(source, quality=90)
            runs = {"reference": lambda: reference_colorize(unfolded, source, target)}  # noqa: B023
            for precision, colorizer in colorizers.items():
                runs[precision] = lambda colorizer=colorizer, source=source, target=target: (
                    save_image(colorizer.colorize_loaded(read_image(source)), target)
                )
            seconds: dict[str, list[float]] = {path: [] for path in PATHS}
            for turn in range(1 + COLORIZE_REPEATS):
                for path in PATHS if turn % 2 == 0 else PATHS[::-1]:
                    started = time.perf_counter()
                    runs[path]()
                    if turn:  # the first image warms up
                        seconds[path].append(time.perf_counter() - started)
            row = {"image": f"{label} ({width}x{height})"}
            row.update({path: statistics.median(seconds[path]) for path in PATHS})
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def report(args, kind: str, capabilities: dict, rows: list[dict], colorize_rows: list[dict]) -> str:
    rates = [rate for row in rows for rate in row["matmul"]]
    fp32 = [rate["fp32"] for rate in rates]
    bf16 = [rate["bf16"] for rate in rates]
    auto = resolve_precision("auto", torch.device("cpu"))
    ratios = [b / a for a, b in zip(fp32, bf16, strict=True)]
    lines = [
        f"## Speed in fp32 and bf16: {kind}",
        "",
        f"Machine: {describe_machine()}.",
        "",
        "CPU capabilities: "
        + ", ".join(f"{key} {value}" for key, value in capabilities.items())
        + f"; `--precision auto` resolves to **{auto}** here.",
        "",
        f"Command: `python benchmarks/speed.py --steps {args.steps}`",
        "",
        f"Matrix multiply (2048^3), measured {len(rates)} times in the same run: fp32 "
        f"{min(fp32):.0f}-{max(fp32):.0f} GFLOP/s, bf16 {min(bf16):.0f}-{max(bf16):.0f} "
        f"GFLOP/s (median ratio {statistics.median(ratios):.2f}x).",
        "",
        "Training steps, images/s: (a) plain eager fp32, NCHW, Adam; (b) colorcnn's step in "
        "fp32; (c) the same in bf16 autocast. The three take turns step by step; b / a and "
        "c / a are medians of the per-step ratios. Evaluation: the plain forward pass and loss, "
        "then colorcnn's evaluation (metrics included) in fp32 and bf16.",
        "",
        "| model | input | batch | (a) train | (b) fp32 | (c) bf16 | b / a | c / a "
        "| eval (a) | eval fp32 | eval bf16 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['model']} | {row['side']} px | {row['batch']} | "
            f"{row['train_reference_images_per_s']:.0f} | {row['train_fp32_images_per_s']:.0f} | "
            f"{row['train_bf16_images_per_s']:.0f} | {row['train_fp32_x_reference']:.2f} | "
            f"{row['train_bf16_x_reference']:.2f} | {row['evaluate_reference_images_per_s']:.0f} "
            f"| {row['evaluate_fp32_images_per_s']:.0f} | {row['evaluate_bf16_images_per_s']:.0f} |"
        )
    lines += [
        "",
        "Colourizing a grey JPEG with `photo`, read to written (quality 95), warm: median of "
        f"{COLORIZE_REPEATS}, the three taking turns. The reference converts the whole picture "
        "with kornia and runs the network unfolded in fp32; colorcnn works in bands and "
        "joins the chroma with the picture's own lightness.",
        "",
        "| image | reference s | colorcnn fp32 s | colorcnn bf16 s |",
        "|---|---|---|---|",
    ]
    for row in colorize_rows:
        lines.append(
            f"| {row['image']} | {row['reference']:.3f} | {row['fp32']:.3f} | {row['bf16']:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per path")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--kind", default=None, help="the machine kind's name in the results")
    parser.add_argument("--models", default=",".join(case[0] for case in CASES))
    parser.add_argument("--results", default=str(REPO_ROOT / "docs" / "results.md"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    kind = args.kind or machine_kind()
    capabilities = cpu_capabilities()
    print(f"{describe_machine()}\n{kind}: {capabilities}", flush=True)
    wanted = args.models.split(",")
    rows = []
    for name, side, batch, target in CASES:
        if name in wanted:
            rows.append(training_and_evaluation(name, side, batch, target, args.steps))
            print(json.dumps({key: value for key, value in rows[-1].items() if key != "matmul"}),
                  flush=True)  # fmt: skip
    colorize_rows = colorize_speed()
    replace_section(
        Path(args.results), f"speed-{kind}", report(args, kind, capabilities, rows, colorize_rows)
    )
    payload = {"machine": describe_machine(), "kind": kind, "capabilities": capabilities,
               "rows": rows, "colorize": colorize_rows}  # fmt: skip
    save_results(f"speed-{kind}", payload)


if __name__ == "__main__":
    main()

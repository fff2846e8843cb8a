"""Training, evaluation and colourizing speed on this machine, against its matmul limit.

Usage:
    python benchmarks/speed.py [--steps 20] [--threads N]

In one run, on the same machine: the fp32 matrix-multiply rate (GFLOP/s), then for the
course UNet, the course CNN (32 px, batch 100, palette targets) and the shipped photo
model's network (128 px crops, batch 64, ab-regression):

- (a) a plain eager PyTorch training step (NCHW, Adam, no compilation), kept here as the
  reference;
- (b) colorcnn's own training step (`colorcnn.training.loop.train_one_epoch` over resident
  tensors, with `colorcnn train`'s deterministic kernels and fused Adam);

each as images/s, the ratio b/a, the achieved GFLOP/s from `colorcnn summary`'s
multiply-add count (x2 for FLOPs, x3 for forward and backward), and the share of the
matmul rate measured around the same steps. Then evaluation (`colorcnn.evaluation.evaluate`,
channels-last as in training, metrics included) and the network's pass alone (with batch
norm folded, as evaluation runs it), in images/s and as a share of the matmul rate, and
colourizing a 1-megapixel photo end to end. Results go into docs/results.md and
benchmarks/results/speed.json.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe_machine, replace_section, save_results  # noqa: E402

from colorcnn.analysis.summary import summarize  # noqa: E402
from colorcnn.color import fit_palette  # noqa: E402
from colorcnn.evaluation.evaluate import TrueImages, evaluate  # noqa: E402
from colorcnn.formulations import build_formulation  # noqa: E402
from colorcnn.inference import Colorizer  # noqa: E402
from colorcnn.models import create_model  # noqa: E402
from colorcnn.models.folding import fold_batch_norm  # noqa: E402
from colorcnn.runtime import fast_layout, set_determinism  # noqa: E402
from colorcnn.training.loop import train_one_epoch  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
CASES = (  # model, side, batch, target
    ("unet", 32, 100, "palette-rgb"),
    ("cnn", 32, 100, "palette-rgb"),
    ("photo_unet", 128, 64, "ab-regression"),
)


ROUNDS = 5  # rounds of alternating (a) and (b) steps per model, each between matmuls


def matmul_gflops(size: int = 2048, repeats: int = 10) -> float:
    a, b = torch.rand(size, size), torch.rand(size, size)
    torch.mm(a, b)
    started = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    return 2 * size**3 * repeats / (time.perf_counter() - started) / 1e9


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


def project_step(model, inputs, targets, formulation, batch: int):
    """What `colorcnn train` runs: its memory layout and fused Adam, then its epoch
    function over one batch; returns its step(index)."""
    model, inputs = fast_layout(model), fast_layout(inputs)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)

    def step(index: int) -> None:
        part = slice((index * batch) % len(inputs), (index * batch) % len(inputs) + batch)
        train_one_epoch(model, optimizer, inputs[part], targets[part], formulation, batch)

    return step


def timed(step, index: int, deterministic: bool) -> float:
    """Seconds of one step; `colorcnn train` runs deterministic kernels by default, the
    reference torch's defaults."""
    set_determinism(deterministic)
    started = time.perf_counter()
    step(index)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per case")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--results", default=str(REPO_ROOT / "docs" / "results.md"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    matmul_rates = [matmul_gflops() for _ in range(3)]
    print(f"matmul: {max(matmul_rates):.1f} GFLOP/s on {torch.get_num_threads()} threads",
          flush=True)  # fmt: skip
    rows = []
    for name, side, batch, target in CASES:
        images = batch * args.steps
        rgb = torch.rand(images, 3, side, side) * 255 / 256
        palette = fit_palette(rgb[:50], num_colours=24, seed=0)
        formulation = build_formulation(target, palette, train_rgb=rgb[:50])
        inputs, targets = formulation.inputs(rgb), formulation.training_targets(rgb)
        macs = summarize(create_model(name, out_channels=formulation.out_channels), name,
                         side).totals["connections"]  # fmt: skip
        train_flops = 2 * 3 * macs  # per image: forward and about twice that backward

        def fresh(name=name, outputs=formulation.out_channels):
            torch.manual_seed(0)
            return create_model(name, out_channels=outputs)

        # (a) and (b) take turns step by step, and the matmul rate is measured before and
        # after every round of steps: on a machine whose speed drifts (shared hosts do,
        # by a third within minutes) both steps and their limit then see the same moments.
        reference = reference_step(fresh(), inputs, targets, formulation.loss, batch)
        project = project_step(fresh(), inputs, targets, formulation, batch)
        timed(reference, 0, False), timed(project, 0, True)  # warm-up
        reference_times, project_times, step_shares = [], [], []
        pairs_per_round = max(1, args.steps // ROUNDS)
        for round_index in range(ROUNDS):
            before = matmul_gflops(repeats=4)
            round_times = []
            for pair in range(pairs_per_round):
                index = round_index * pairs_per_round + pair
                if index % 2:
                    project_times.append(timed(project, index, True))
                    reference_times.append(timed(reference, index, False))
                else:
                    reference_times.append(timed(reference, index, False))
                    project_times.append(timed(project, index, True))
                round_times.append(project_times[-1])
            after = matmul_gflops(repeats=4)
            matmul_rates.extend((before, after))
            round_gflops = batch / statistics.median(round_times) * train_flops / 1e9
            step_shares.append(round_gflops / ((before + after) / 2))
        set_determinism(False)
        reference_rate = batch / statistics.median(reference_times)
        project_rate = batch / statistics.median(project_times)
        ratio = statistics.median(
            [a / b for a, b in zip(reference_times, project_times, strict=True)]
        )
        # Evaluation as training runs it each epoch: channels-last network and inputs, the
        # true images prepared once per run, metrics included; then the network's pass
        # alone (inference mode, same batches), each beside the matmul rate of its moment.
        model, layout_inputs = fast_layout(fresh().eval()), fast_layout(inputs)
        truth = TrueImages.prepare(rgb, formulation.palette, batch)
        network = fold_batch_norm(model)  # what evaluation runs

        def network_pass(network=network, layout_inputs=layout_inputs, batch=batch):
            with torch.inference_mode():
                for start in range(0, len(layout_inputs), batch):
                    network(layout_inputs[start : start + batch])

        evaluation_rates, pass_rates, evaluation_shares, pass_shares = [], [], [], []
        for turn in range(4):
            before = matmul_gflops(repeats=4)
            started = time.perf_counter()
            evaluate(model, layout_inputs, targets, truth, formulation, batch)
            middle = time.perf_counter()
            network_pass()
            finished = time.perf_counter()
            after = matmul_gflops(repeats=4)
            if turn:  # the first turn warms up
                matmul_rates.extend((before, after))
                moment = (before + after) / 2
                evaluation_rates.append(images / (middle - started))
                pass_rates.append(images / (finished - middle))
                evaluation_shares.append(evaluation_rates[-1] * 2 * macs / 1e9 / moment)
                pass_shares.append(pass_rates[-1] * 2 * macs / 1e9 / moment)
        evaluation_rate = statistics.median(evaluation_rates)
        pass_rate = statistics.median(pass_rates)
        row = {
            "model": name, "side": side, "batch": batch, "target": target,
            "mmacs_per_image": macs / 1e6,
            "reference_images_per_s": reference_rate, "project_images_per_s": project_rate,
            "ratio": ratio,
            "project_gflops": project_rate * train_flops / 1e9,
            "share_of_matmul": statistics.median(step_shares),
            "evaluation_images_per_s": evaluation_rate,
            "evaluation_gflops": evaluation_rate * 2 * macs / 1e9,
            "evaluation_share_of_matmul": statistics.median(evaluation_shares),
            "network_pass_images_per_s": pass_rate,
            "network_pass_gflops": pass_rate * 2 * macs / 1e9,
            "network_pass_share_of_matmul": statistics.median(pass_shares),
        }  # fmt: skip
        rows.append(row)
        print(json.dumps(row), flush=True)

    colorizer = Colorizer.load("photo")
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "photo.jpg"
        pixels = np.random.RandomState(0).rand(48, 64) * 255
        from PIL import Image

        Image.fromarray(pixels.astype(np.uint8)).resize((1155, 866)).save(photo)
        colorizer.colorize(photo)
        times = []
        for _ in range(5):
            started = time.perf_counter()
            colorizer.colorize(photo).save(Path(tmp) / "out.jpg", quality=95)
            times.append(time.perf_counter() - started)
    colorize_seconds = statistics.median(times)

    lines = [
        "## Speed against the machine's limit",
        "",
        f"Machine: {describe_machine()}.",
        "",
        f"Command: `python benchmarks/speed.py --steps {args.steps}`",
        "",
        f"fp32 matrix multiply (2048^3) in the same run, measured {len(matmul_rates)} times: "
        f"{min(matmul_rates):.0f}-{max(matmul_rates):.0f} GFLOP/s. Each share of matmul "
        "divides the achieved GFLOP/s by the matmul rate measured just before and after the "
        f"same steps (median over {ROUNDS} rounds, 3 for evaluation). Steps: (a) and (b) "
        f"alternate step by step, {max(1, args.steps // ROUNDS) * ROUNDS} each; b / a is "
        "the median of the pairs' ratios. Training FLOPs per image: 6 x the multiply-adds "
        "that `colorcnn summary` counts.",
        "",
        "| model | input | batch | M multiply-adds / image | (a) plain eager step img/s "
        "| (b) colorcnn step img/s | b / a | GFLOP/s | share of matmul | evaluation img/s "
        "| evaluation share of matmul | network pass img/s | network pass share of matmul |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['model']} | {row['side']} px | {row['batch']} | "
            f"{row['mmacs_per_image']:.1f} | {row['reference_images_per_s']:.0f} | "
            f"{row['project_images_per_s']:.0f} | {row['ratio']:.2f} | "
            f"{row['project_gflops']:.1f} | {100 * row['share_of_matmul']:.0f}% | "
            f"{row['evaluation_images_per_s']:.0f} | "
            f"{100 * row['evaluation_share_of_matmul']:.0f}% | "
            f"{row['network_pass_images_per_s']:.0f} | "
            f"{100 * row['network_pass_share_of_matmul']:.0f}% |"
        )
    lines += ["", "Evaluation is what training runs after every epoch: the network's pass, "
              "the loss, the course's accuracy, and PSNR and colourfulness of the prediction "
              "joined with the true lightness. The network pass is the forward pass alone, in "
              "inference mode, on the same batches."]  # fmt: skip
    lines += ["", f"Colourizing a 1-megapixel JPEG with `photo` (read, colourize, write): "
              f"{colorize_seconds:.3f} s (median of 5)."]  # fmt: skip
    replace_section(Path(args.results), "speed", "\n".join(lines))
    payload = {"machine": describe_machine(), "matmul_gflops_measured": matmul_rates,
               "rows": rows,
               "colorize_1mp_seconds": colorize_seconds}  # fmt: skip
    save_results("speed", payload)


if __name__ == "__main__":
    main()

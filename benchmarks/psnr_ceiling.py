"""How far PSNR can go on a test set: colourizers that are told part of the true colour.

Usage:
    python benchmarks/psnr_ceiling.py --cifar path/to/cifar10 [--category horse]
                                      [--run RUN_DIR ...]

Every row joins some chroma with the true Lab lightness and is scored as `colorcnn
evaluate` scores a network (mean per-image PSNR of the RGB picture). The "told" rows are
not colourizers: they are handed part of the truth (each image's own average colour, or
its chroma at a coarse resolution) and so bound what a network that sees only the grey
picture can reach. `--run` adds trained runs' best checkpoints for comparison. The table
goes into docs/results.md and benchmarks/results/psnr_ceiling.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe_machine, replace_section, save_results  # noqa: E402

from colorcnn.color.spaces import (  # noqa: E402
    course_grey,
    join_lightness_and_ab,
    rgb_to_lab,
    unit_rgb,  # noqa: E402
)
from colorcnn.data.datasets import DataSettings, load_course_data  # noqa: E402
from colorcnn.evaluation.evaluate import evaluate_checkpoint  # noqa: E402
from colorcnn.evaluation.metrics import colourfulness, psnr_per_image  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent


def coarse(ab: torch.Tensor, cells: int) -> torch.Tensor:
    """The true chroma averaged over cells x cells blocks, then bilinearly enlarged."""
    side = ab.shape[-1]
    return F.interpolate(F.adaptive_avg_pool2d(ab, cells), size=side, mode="bilinear")


def score(truth: torch.Tensor, lightness: torch.Tensor, ab: torch.Tensor) -> dict[str, float]:
    picture = join_lightness_and_ab(lightness, ab)
    return {
        "psnr": psnr_per_image(picture, truth).mean().item(),
        "colourfulness": colourfulness(picture).mean().item(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cifar", required=True, help="CIFAR-10 folder")
    parser.add_argument("--category", default="horse")
    parser.add_argument("--run", action="append", default=[], help="run folder to score too")
    parser.add_argument("--results", default=str(REPO_ROOT / "docs" / "results.md"))
    args = parser.parse_args()

    data = load_course_data(DataSettings(data=args.cifar, category=args.category))
    truth = unit_rgb(data.test_rgb)
    lab = rgb_to_lab(truth)
    lightness, ab = lab[:, :1], lab[:, 1:]
    train_ab = rgb_to_lab(unit_rgb(data.train_rgb))[:, 1:].mean(dim=(0, 2, 3), keepdim=True)

    rows: list[tuple[str, dict[str, float]]] = []
    grey_rgb = course_grey(truth).expand_as(truth)  # the course's grey input
    rows.append(("course grey (mean of R, G, B)", {
        "psnr": psnr_per_image(grey_rgb, truth).mean().item(), "colourfulness": 0.0}))  # fmt: skip
    rows.append(("grey: true L, no chroma", score(truth, lightness, torch.zeros_like(ab))))
    rows.append(("mean training chroma", score(truth, lightness, train_ab.expand_as(ab))))
    for run in args.run:
        scores = evaluate_checkpoint(run, data=args.cifar, baselines=False)
        rows.append((f"network: {Path(run).name}", scores))
    told = {
        "told each image's average chroma": ab.mean(dim=(2, 3), keepdim=True).expand_as(ab),
        "told the chroma on a 2x2 grid": coarse(ab, 2),
        "told the chroma on a 4x4 grid": coarse(ab, 4),
        "told the true chroma at half strength": ab * 0.5,
    }
    for name, told_ab in told.items():
        rows.append((name, score(truth, lightness, told_ab)))
    truth_cf = colourfulness(truth).mean().item()
    for name, scores in rows:
        print(f"{name:45s} {scores['psnr']:6.2f} dB  CF {scores['colourfulness']:5.1f}")

    lines = [
        "## How high PSNR can go on the horse test set",
        "",
        f"Machine: {describe_machine()}.",
        "",
        f"Command: `python benchmarks/psnr_ceiling.py --cifar path/to/cifar10 --category "
        f"{args.category}" + "".join(f" --run {Path(run).name}" for run in args.run) + "`",
        "",
        f"{len(truth)} test images of {args.category!r}; true colourfulness {truth_cf:.1f}. "
        "Rows below the networks are handed part of the true colour, so they are ceilings, "
        "not colourizers.",
        "",
        "| colour source | PSNR dB | colourfulness |",
        "|---|---|---|",
    ]
    lines += [f"| {name} | {s['psnr']:.2f} | {s['colourfulness']:.1f} |" for name, s in rows]
    replace_section(Path(args.results), "psnr-ceiling", "\n".join(lines))
    payload = {
        "machine": describe_machine(),
        "category": args.category,
        "images": len(truth),
        "truth_colourfulness": truth_cf,
        "rows": [{"source": name, **scores} for name, scores in rows],
    }
    save_results("psnr_ceiling", payload)


if __name__ == "__main__":
    main()

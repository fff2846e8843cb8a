"""Decoding knobs: how vivid against how close. The annealed mean's temperature for an
ab-bins run, and the chroma gain for an ab-regression run.

Usage:
    python benchmarks/decoding.py --ab-bins RUN_DIR --ab-regression RUN_DIR

Scores each run's best checkpoint at each setting on its test split (for CIFAR-10 horses,
the split the course also validates on) and writes the tables into docs/results.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe_machine, replace_section  # noqa: E402

from colorcnn.evaluation.evaluate import evaluate_checkpoint  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
HEADER = [
    "| {knob} | PSNR dB | SSIM | colourfulness | CF gap | AuC | AuC rebal. | val acc % |",
    "|---|---|---|---|---|---|---|---|",
]


def sweep(run: str, knob: str, values: list[float]) -> list[str]:
    lines = [line.format(knob=knob) for line in HEADER]
    for value in values:
        option = {"temperature": value} if knob == "T" else {"chroma_gain": value}
        scores = evaluate_checkpoint(run, baselines=False, **option)
        print(knob, value, f"{scores['psnr']:.2f}", f"{scores['colourfulness']:.1f}", flush=True)
        lines.append(
            f"| {value:g} | {scores['psnr']:.2f} | {scores['ssim']:.4f} | "
            f"{scores['colourfulness']:.1f} | {scores['colourfulness_gap']:.1f} | "
            f"{scores['auc']:.3f} | {scores['auc_rebalanced']:.3f} | {scores['val_acc']:.1f} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ab-bins", help="an ab-bins run folder")
    parser.add_argument("--ab-regression", help="an ab-regression run folder")
    parser.add_argument("--temperatures", default="0.2,0.38,0.6,1,1.5,2.5")
    parser.add_argument("--gains", default="1,1.15,1.3,1.5,1.7")
    parser.add_argument("--results", default=str(REPO_ROOT / "docs" / "results.md"))
    args = parser.parse_args()

    body = [
        "## Decoding: vivid against close",
        "",
        f"Machine: {describe_machine()}.",
        "",
        "Command: `python benchmarks/decoding.py --ab-bins RUN --ab-regression RUN` on the "
        "CIFAR-10 horse UNet runs of the colour-quality benchmark; best checkpoints, 1000 "
        "test images, true lightness. The course validates on this split, so a setting "
        "picked from these tables is picked on it too.",
    ]
    if args.ab_bins:
        temperatures = [float(t) for t in args.temperatures.split(",")]
        body += [
            "",
            "### ab-bins: annealed-mean temperature T (0.38 is the paper's; 1 is the mean)",
            "",
        ]
        body += sweep(args.ab_bins, "T", temperatures)
    if args.ab_regression:
        gains = [float(g) for g in args.gains.split(",")]
        body += ["", "### ab-regression: chroma gain (1 is the plain prediction)", ""]
        body += sweep(args.ab_regression, "gain", gains)
    replace_section(Path(args.results), "decoding", "\n".join(body))


if __name__ == "__main__":
    main()

"""The annealed mean's temperature: colourfulness against PSNR for an ab-bins run.

Usage:
    python benchmarks/temperature.py RUN_DIR [--temperatures 0.1,0.2,0.38,0.6,1.0]

Scores the run's best checkpoint at each temperature (T -> 0 is the arg-max bin, T = 1 the
plain mean) and writes the table into docs/results.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe_machine, replace_section  # noqa: E402

from colorcnn.evaluation.evaluate import evaluate_checkpoint  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run", help="an ab-bins run folder")
    parser.add_argument("--temperatures", default="0.1,0.2,0.38,0.6,1.0")
    parser.add_argument("--results", default=str(REPO_ROOT / "docs" / "results.md"))
    args = parser.parse_args()

    lines = [
        "## Annealed-mean temperature (ab-bins)",
        "",
        f"Machine: {describe_machine()}.",
        "",
        "Command: `python benchmarks/temperature.py RUN_DIR` on the CIFAR-10 horse UNet ab-bins "
        "run of the colour-quality benchmark; best checkpoint, 1000 test images.",
        "",
        "| T | PSNR dB | SSIM | colourfulness | CF gap | AuC | AuC rebal. |",
        "|---|---|---|---|---|---|---|",
    ]
    for temperature in (float(t) for t in args.temperatures.split(",")):
        scores = evaluate_checkpoint(args.run, temperature=temperature, baselines=False)
        print(temperature, scores["psnr"], scores["colourfulness"], flush=True)
        lines.append(
            f"| {temperature:g} | {scores['psnr']:.2f} | {scores['ssim']:.4f} | "
            f"{scores['colourfulness']:.1f} | {scores['colourfulness_gap']:.1f} | "
            f"{scores['auc']:.3f} | {scores['auc_rebalanced']:.3f} |"
        )
    replace_section(Path(args.results), "temperature", "\n".join(lines))


if __name__ == "__main__":
    main()

"""Reproduce the course's CIFAR-10 horse colourization numbers for every model of the zoo.

Usage:
    python benchmarks/reproduce_course.py --data PATH/TO/cifar10 [--epochs 25] [--models unet,cnn]

Trains each model with the course's defaults (horse, 25 epochs, batch 100, Adam 0.001,
seed 0), then writes a table of the final and best validation loss and accuracy and the
seconds per epoch into docs/results.md, and the raw numbers into benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe_machine, replace_section, save_results  # noqa: E402

from colorcnn.data import DataSettings  # noqa: E402
from colorcnn.training import TrainConfig, fit  # noqa: E402

COURSE_MODELS = (
    "unet", "cnn", "pool_upsample_net", "conv_transpose_net", "dilated_unet", "regression_cnn",
)  # fmt: skip
PUBLISHED = {
    "unet": "1.33-1.38 / 48-49%",
    "cnn": "1.59-1.93 / 34-41%",
    "pool_upsample_net": "1.58 / 41%",
    "conv_transpose_net": "1.14-1.15 / 55%",
    "dilated_unet": "-",
    "regression_cnn": "MSE 0.0082",
}
REPO_ROOT = Path(__file__).resolve().parent.parent


def summarise(model: str, history: list[dict]) -> dict:
    best = min(history, key=lambda record: record["val_loss"])
    last = history[-1]
    return {
        "model": model,
        "epochs": len(history),
        "final_val_loss": last["val_loss"],
        "final_val_acc": last["val_acc"],
        "best_epoch": best["epoch"],
        "best_val_loss": best["val_loss"],
        "best_val_acc": best["val_acc"],
        "max_val_acc": max(record["val_acc"] for record in history),
        "seconds_per_epoch": statistics.median(r["seconds"] for r in history),
        "fastest_epoch_seconds": min(r["seconds"] for r in history),
    }


def markdown(rows: list[dict], machine: str, command: str) -> str:
    lines = [
        "## Course reproduction: CIFAR-10 horses, 24 colours",
        "",
        f"Machine: {machine}.",
        "",
        f"Command: `{command}`",
        "",
        "Defaults of the course: category horse (5000 train / 1000 validation images), "
        "25 epochs, batch 100, Adam lr 0.001, seed 0, kernel 3, NF 32. "
        "Epochs are numbered from 0, as in the course's pictures. "
        "The best checkpoint is the epoch with the lowest validation loss. "
        "Seconds per epoch include validation; other work shared the 2 cores during parts of "
        "the run, so the fastest epoch is the better guide to speed. "
        "For regression_cnn the loss is the MSE on RGB (/256 scale) and the accuracy is that "
        "of its prediction snapped to the nearest palette colour.",
        "",
        "| model | final val loss | final val acc | best epoch | best val loss | best val acc "
        "| highest val acc | s / epoch (median, fastest) | published (loss / acc) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['model']} | {row['final_val_loss']:.4f} | {row['final_val_acc']:.1f}% | "
            f"{row['best_epoch']} | {row['best_val_loss']:.4f} | {row['best_val_acc']:.1f}% | "
            f"{row['max_val_acc']:.1f}% | {row['seconds_per_epoch']:.1f}, "
            f"{row['fastest_epoch_seconds']:.1f} | "
            f"{PUBLISHED.get(row['model'], '-')} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", required=True, help="CIFAR-10 folder (batches or image-folder tree)"
    )
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--models", default=",".join(COURSE_MODELS))
    parser.add_argument("--runs", default="runs/course", help="where the runs are written")
    parser.add_argument("--results", default=str(REPO_ROOT / "docs" / "results.md"))
    args = parser.parse_args()

    rows = []
    machine = describe_machine()
    for model in args.models.split(","):
        run_dir = Path(args.runs) / model
        started = time.perf_counter()
        # A finished run is read back and an interrupted one continues where it stopped.
        resume = (run_dir / "checkpoints" / "last.safetensors").is_file()
        history = fit(
            TrainConfig(
                model=model, data=DataSettings(args.data), epochs=args.epochs, out=str(run_dir)
            ),
            resume=resume,
            show_progress=False,
        )
        row = summarise(model, history)
        row["wall_seconds"] = time.perf_counter() - started
        rows.append(row)
        print(json.dumps(row), flush=True)

    save_results("course", {"machine": machine, "epochs": args.epochs, "rows": rows})
    command = "python benchmarks/reproduce_course.py --data ../data/cifar10"
    if args.epochs != 25:
        command += f" --epochs {args.epochs}"
    replace_section(Path(args.results), "course-reproduction", markdown(rows, machine, command))


if __name__ == "__main__":
    main()

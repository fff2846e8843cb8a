"""Super-resolution: the course's 24-colour protocol and real x4 upscaling against bicubic.

Usage:
    python benchmarks/superres.py --data PATH/TO/cifar10 [--photos PATH/TO/photos]
        [--runs DIR] [--course-epochs 25] [--real-epochs 6] [--photo-epochs 12]
    python benchmarks/superres.py --shipped --photos PATH/TO/photos [--upscalers NAME ...]

- Course protocol (horse, 25 epochs, batch 100, Adam 0.001, seed 0): UNet and CNN with
  `--task superres` (input: the image average-pooled x4 and upsampled by nearest
  neighbour; target: 24-colour classes at full resolution), beside the course's bilinear
  baseline (quantized truth pooled x4, upsampled bilinearly).
- Real upscaling x4 (`--target superres-rgb`): a UNet predicts the residual over bicubic,
  trained on the CIFAR-10 training set of every class and scored on the whole test set;
  with `--photos`, also on 64 px photo crops, scored on the held-out photos' views.

Finished runs in --runs are read back instead of retrained. Results go into
docs/results.md and benchmarks/results/superres.json.

With `--shipped` (and `--photos`, without `--data`), the shipped upscalers instead
(`upscale-x2`, `upscale-x4`, or `--upscalers` NAME ...): every photo of the held-out TEST
sources (never trained on, never used to pick a checkpoint), cropped to sides that are
multiples of 4, is shrunk by the training's degradation (bicubic with antialiasing, 8-bit;
`formulations.superres.shrink`), upscaled back by bicubic and by the model, and scored
against the photo on Y (kornia's full-range YCbCr) and on RGB, `scale` pixels of border
cropped; then the speed for a 1-megapixel result, a crop picture (bicubic / model /
truth), and which order of colourizing and upscaling comes closer to a colour photo
whose shrunk grey copy is the input. Results: the superres-shipped section of
docs/results.md, benchmarks/results/superres_shipped.json,
docs/images/upscale_crops.png.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe_machine, replace_section, save_results  # noqa: E402
from _superres_shipped import benchmark_shipped  # noqa: E402

from colorcnn.data import DataSettings  # noqa: E402
from colorcnn.evaluation.evaluate import evaluate_checkpoint  # noqa: E402
from colorcnn.training import TrainConfig, fit  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent


def run(config: TrainConfig) -> list[dict]:
    metrics = Path(config.out) / "metrics.jsonl"
    if metrics.is_file():
        history = [json.loads(line) for line in metrics.read_text().splitlines()]
        if len(history) >= config.epochs:
            return history
        return fit(config, resume=True)
    return fit(config)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default=None, help="CIFAR-10 (the training benchmark)")
    parser.add_argument("--shipped", action="store_true", help="benchmark shipped upscalers")
    parser.add_argument("--upscalers", nargs="+", default=["upscale-x2", "upscale-x4"])
    parser.add_argument("--colorizer", default="photo", help="--shipped: for the order test")
    parser.add_argument("--photos", default=None)
    parser.add_argument("--runs", default="runs/superres")
    parser.add_argument("--course-epochs", type=int, default=25)
    parser.add_argument("--real-epochs", type=int, default=6)
    parser.add_argument("--photo-epochs", type=int, default=12)
    parser.add_argument("--only", default="", help="comma-separated run names to (re)train")
    parser.add_argument("--results", default=str(REPO_ROOT / "docs" / "results.md"))
    args = parser.parse_args()
    if args.shipped:
        if args.photos is None:
            parser.error("--shipped needs --photos (the held-out TEST sources are scored)")
        benchmark_shipped(Path(args.photos), args.upscalers, args.colorizer, Path(args.results))
        return
    if args.data is None:
        parser.error("--data is required (or --shipped with --photos)")
    runs = Path(args.runs)
    common = {"task": "superres", "picture_every": 5}
    plans = {
        "course-unet": TrainConfig(model="unet", data=DataSettings(args.data),
                                   epochs=args.course_epochs, out=str(runs / "course-unet"),
                                   **common),
        "course-cnn": TrainConfig(model="cnn", data=DataSettings(args.data),
                                  epochs=args.course_epochs, out=str(runs / "course-cnn"),
                                  **common),
        "real-unet-x4": TrainConfig(
            model="unet", data=DataSettings(args.data, category="all"), target="superres-rgb",
            colour_width=32, shuffle_each_epoch=True, epochs=args.real_epochs,
            out=str(runs / "real-unet-x4"), **common,
        ),
    }  # fmt: skip
    if args.photos:
        plans["photos-unet-x4"] = TrainConfig(
            model="unet", target="superres-rgb",
            data=DataSettings(args.photos, dataset="photos", crop_size=64, crops_per_photo=32),
            colour_width=32, shuffle_each_epoch=True, epochs=args.photo_epochs, task="superres",
            picture_every=5, out=str(runs / "photos-unet-x4"),
        )  # fmt: skip
    only = {name for name in args.only.split(",") if name}
    rows = []
    for name, config in plans.items():
        if only and name not in only:
            continue
        history = run(config)
        scores = evaluate_checkpoint(config.out, baselines=False)
        best = min(history, key=lambda record: record["val_loss"])
        row = {
            "run": name, "model": config.model, "target": config.target or "superres-palette",
            "epochs": len(history), "best_epoch": best["epoch"],
            "val_acc": scores["val_acc"], "psnr": scores["psnr"], "ssim": scores["ssim"],
            "psnr_baseline": scores["psnr_baseline"], "ssim_baseline": scores["ssim_baseline"],
            "max_val_acc": max(record["val_acc"] for record in history),
            "seconds_per_epoch": min(record["seconds"] for record in history),
        }  # fmt: skip
        rows.append(row)
        print(json.dumps(row), flush=True)

    lines = [
        "## Super-resolution",
        "",
        f"Machine: {describe_machine()}.",
        "",
        "Command: `python benchmarks/superres.py --data path/to/cifar10"
        + (f" --photos path/to/photos --photo-epochs {args.photo_epochs}" if args.photos else "")
        + f" --course-epochs {args.course_epochs} --real-epochs {args.real_epochs}`",
        "",
        "Scores of the best checkpoint (lowest validation loss) on the test split: CIFAR-10 "
        "horses for the course protocol, all 10000 test images for real x4 upscaling, the "
        "held-out photos' views for photos. Baseline: the course's bilinear picture for "
        "superres-palette, bicubic for superres-rgb. Neither is given the true lightness.",
        "",
        "| run | model | target | epochs (best) | val acc | PSNR dB | baseline PSNR | gain dB "
        "| SSIM | baseline SSIM | fastest epoch s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['run']} | {row['model']} | {row['target']} | {row['epochs']} "
            f"({row['best_epoch'] + 1}) | {row['val_acc']:.1f}% | {row['psnr']:.2f} | "
            f"{row['psnr_baseline']:.2f} | {row['psnr'] - row['psnr_baseline']:+.2f} | "
            f"{row['ssim']:.4f} | {row['ssim_baseline']:.4f} | {row['seconds_per_epoch']:.1f} |"
        )
    if not only:
        replace_section(Path(args.results), "superres", "\n".join(lines))
        save_results("superres", {"machine": describe_machine(), "rows": rows})
    else:
        print("\n".join(lines))


if __name__ == "__main__":
    main()

"""Copy trained runs' best checkpoints into the package as shipped weights.

Usage:
    python tools/ship_weights.py [--chroma-gain G] [--working-size S] [--heldout JSON]
        [--upscaling JSON] NAME=RUN_DIR [NAME=RUN_DIR ...]

Keeps the weights and the description needed to use them (model, formulation, palette,
data settings, metrics), drops the optimizer state and replaces machine-specific paths:
the data folders become the official CIFAR-10 download (or the dataset's name) and the
run folder the model's name. `--chroma-gain` stores a decoding gain with ab-regression
weights, the one chosen on the held-out photos (docs/results.md).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from colorcnn.formulations import formulation_from_description
from colorcnn.trained.checkpoint import build_model, load_checkpoint, save_checkpoint
from colorcnn.weights import WEIGHTS_DIR


def portable(info: dict, name: str) -> dict:
    info = {k: v for k, v in info.items() if k not in ("optimizer", "format")}
    data = dict(info["data"])
    data["data"] = None if data.get("dataset", "cifar10") == "cifar10" else data["dataset"]
    config = dict(info["train_config"])
    data["cifar_data"] = None
    if isinstance(config.get("data"), dict):  # settings of this version: the data nested
        config.update(data=data, out=name, palette_file=None)
    else:  # the flat settings of earlier runs
        config.update(data=data["data"], cifar_data=None, out=name, palette_file=None)
    info.update(data=data, train_config=config, shipped_as=name)
    return info


def heldout_scores(results: Path, label: str) -> dict:
    """The model's overall scores on the held-out photo sources, from the photo benchmark's
    JSON (the row of `label` at its own settings and first working size)."""
    payload = json.loads(results.read_text())
    for summary in payload["summaries"]:
        if summary["model"] == label:
            overall = summary["overall"]
            return {
                "split": payload["split"], "photos": overall["photos"],
                "working_size": summary["size"], "psnr": round(overall["psnr"], 2),
                "vs_grey": round(overall["vs_grey"], 2),
                "vs_grey_median": round(overall["vs_grey_median"], 2),
                "colourfulness_share": round(overall["colourfulness_share"], 3),
                "below_grey_3db": overall["below_grey"],
            }  # fmt: skip
    raise SystemExit(f"{results} has no scores for {label!r}")


def upscaling_scores(results: Path, name: str) -> dict:
    """An upscaler's mean scores on the held-out photo sources, from the JSON of
    `benchmarks/superres.py --shipped`, so that `colorcnn models` can show them."""
    payload = json.loads(results.read_text())
    for row in payload["rows"]:
        if row["name"] == name:
            mean, quality = row["quality"]["mean"], row["quality"]
            return {
                "split": payload["split"], "photos": quality["photos"], "scale": row["scale"],
                "y_psnr": round(mean["model"]["y_psnr"], 2),
                "y_psnr_bicubic": round(mean["bicubic"]["y_psnr"], 2),
                "y_psnr_gain": round(mean["gain"]["y_psnr"], 2),
                "y_ssim_gain": round(mean["gain"]["y_ssim"], 4),
                "rgb_psnr_gain": round(mean["gain"]["rgb_psnr"], 2),
                "below_bicubic": quality["below_bicubic"],
                "seconds_for_1mp": round(row["speed"]["seconds"], 2),
            }  # fmt: skip
    raise SystemExit(f"{results} has no scores for {name!r}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", nargs="+", metavar="NAME=RUN_DIR")
    parser.add_argument("--chroma-gain", type=float, default=None)
    parser.add_argument(
        "--working-size", type=int, default=None,
        help="the shorter side colourizing runs at by default, as chosen on held-out photos",
    )  # fmt: skip
    parser.add_argument(
        "--heldout", default=None, metavar="JSON",
        help="benchmarks/results/photos.json: store the model's held-out scores with it",
    )  # fmt: skip
    parser.add_argument(
        "--upscaling", default=None, metavar="JSON",
        help="benchmarks/results/superres_shipped.json: store an upscaler's held-out scores",
    )  # fmt: skip
    args = parser.parse_args()
    for pair in args.runs:
        name, _, run = pair.partition("=")
        checkpoint = load_checkpoint(Path(run), prefer="best")
        model = build_model(checkpoint)
        info = portable(checkpoint.info, name)
        if args.chroma_gain is not None:
            if info["formulation"]["name"] != "ab-regression":
                parser.error(f"--chroma-gain applies to ab-regression runs, not {run}")
            info["formulation"] = {**info["formulation"], "chroma_gain": args.chroma_gain}
        # Written out in full, so that the shipped description does not lean on the
        # defaults of the version that loads it (a hint model's propagation settings).
        palette = torch.tensor(info["palette"], dtype=torch.float32)
        info["formulation"] = formulation_from_description(info, palette).describe()
        if args.working_size is not None:
            info["working_size"] = args.working_size
        if args.heldout is not None:
            info["heldout_photos"] = heldout_scores(Path(args.heldout), name)
        if args.upscaling is not None:
            info["heldout_upscaling"] = upscaling_scores(Path(args.upscaling), name)
        save_checkpoint(WEIGHTS_DIR / name, model, info)
        size = (WEIGHTS_DIR / f"{name}.safetensors").stat().st_size
        print(f"shipped {name}: {size / 1e3:.0f} kB from {run}")


if __name__ == "__main__":
    main()

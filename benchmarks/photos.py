"""Colourizing whole held-out photos at their full size, against their true colours.

Usage:
    python benchmarks/photos.py --photos DIR --models NAME_OR_RUN[,...] [--sizes 64,128,256]

Each held-out photo (the split of `colorcnn.data.photos`, chosen by a hash of the file
name, never trained on) is turned grey with exactly its own Lab lightness, colourized by
`Colorizer` at each working size, and scored at full resolution: PSNR, SSIM and
colourfulness against the original, beside the grey input itself. Results go into
docs/results.md and benchmarks/results/photos.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe_machine, replace_section  # noqa: E402

from colorcnn.color.spaces import join_lightness_and_ab, rgb_to_lab  # noqa: E402
from colorcnn.data.photos import list_photos, split_photos  # noqa: E402
from colorcnn.evaluation import metrics  # noqa: E402
from colorcnn.inference import Colorizer  # noqa: E402
from colorcnn.inference.images import read_image  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent


def as_tensor(image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255).permute(
        2, 0, 1
    )[None]


def score(predicted: torch.Tensor, truth: torch.Tensor) -> dict[str, float]:
    return {
        "psnr": float(metrics.psnr_per_image(predicted, truth)[0]),
        "ssim": float(metrics.ssim_per_image(predicted, truth)[0]),
        "colourfulness": float(metrics.colourfulness(predicted)[0]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--photos", required=True)
    parser.add_argument("--models", required=True, help="shipped names or run folders, by commas")
    parser.add_argument("--sizes", default="64,128,256", help="working sizes (shorter side)")
    parser.add_argument("--results", default=str(REPO_ROOT / "docs" / "results.md"))
    args = parser.parse_args()

    held_out = split_photos(list_photos(Path(args.photos))).validation
    truths, greys = [], []
    for path in held_out:
        truth = torch.from_numpy(read_image(path).rgb_rows(slice(None))).permute(2, 0, 1)[None]
        lightness = rgb_to_lab(truth)[:, :1]
        truths.append(truth)
        greys.append(join_lightness_and_ab(lightness, torch.zeros_like(truth[:, :2])))

    def mean_scores(pairs) -> dict[str, float]:
        rows = [score(p, t) for p, t in pairs]
        means = {key: float(np.mean([r[key] for r in rows])) for key in rows[0]}
        truth_cf = float(np.mean([metrics.colourfulness(t)[0] for t in truths]))
        means["colourfulness_share"] = means["colourfulness"] / truth_cf
        return means

    results = [{"model": "grey input", "size": "-", **mean_scores(zip(greys, truths, strict=True))}]
    for reference in args.models.split(","):
        colorizer = Colorizer.load(reference)
        for size in (int(s) for s in args.sizes.split(",")):
            started = time.perf_counter()
            outputs = []
            for grey in greys:
                image = grey[0].permute(1, 2, 0).numpy()
                outputs.append(as_tensor(colorizer.colorize(image, size)))
            seconds = (time.perf_counter() - started) / len(greys)
            row = {"model": reference, "size": size, "seconds_per_photo": seconds}
            row.update(mean_scores(zip(outputs, truths, strict=True)))
            results.append(row)
            print(json.dumps(row), flush=True)

    grey_psnr = results[0]["psnr"]
    lines = [
        "## Whole held-out photos at full size",
        "",
        f"Machine: {describe_machine()}.",
        "",
        f"Command: `python benchmarks/photos.py --photos path/to/photos --models {args.models} "
        f"--sizes {args.sizes}`",
        "",
        f"{len(held_out)} held-out photos (shorter side 256 px), made grey with exactly their "
        "own Lab lightness, colourized at the working size and scored at full size.",
        "",
        "| model | working size | PSNR dB | vs grey | SSIM | colourfulness | share of truth "
        "| s / photo |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in results:
        seconds = f"{row['seconds_per_photo']:.3f}" if "seconds_per_photo" in row else "-"
        lines.append(
            f"| {row['model']} | {row['size']} | {row['psnr']:.2f} | "
            f"{row['psnr'] - grey_psnr:+.2f} | {row['ssim']:.4f} | {row['colourfulness']:.1f} | "
            f"{100 * row['colourfulness_share']:.0f}% | {seconds} |"
        )
    replace_section(Path(args.results), "photos", "\n".join(lines))
    out = REPO_ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    payload = {"machine": describe_machine(), "rows": results}
    (out / "photos.json").write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Colourizing whole held-out photos at their full size, against their true colours.

Usage:
    python benchmarks/photos.py --photos DIR --models NAME_OR_RUN[,...] [--sizes 64,128,256]
        [--chroma-gains 1.0,1.15,1.3] [--temperatures 0.2,0.38,1.0]

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
from _machine import describe_machine, replace_section, save_results  # noqa: E402

from colorcnn.color.spaces import join_lightness_and_ab, rgb_to_lab  # noqa: E402
from colorcnn.data.photos import list_photos, split_photos  # noqa: E402
from colorcnn.evaluation import metrics  # noqa: E402
from colorcnn.files import atomic_path  # noqa: E402
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


def save_examples(colorizer, greys, truths, size: int, target: Path, count: int = 4) -> None:
    """Grey input, colourized and true colours of the first `count` held-out photos."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, count, figsize=(3 * count, 6.6), squeeze=False)
    for column, (grey, truth) in enumerate(list(zip(greys, truths, strict=True))[:count]):
        colourized = colorizer.colorize(grey[0].permute(1, 2, 0).numpy(), size)
        pictures = (grey[0].permute(1, 2, 0).numpy(), colourized, truth[0].permute(1, 2, 0).numpy())
        for row, (label, picture) in enumerate(
            zip(("grey input", colorizer.name, "truth"), pictures, strict=True)
        ):
            axes[row][column].imshow(picture)
            axes[row][column].set_xticks([])
            axes[row][column].set_yticks([])
            if column == 0:
                axes[row][column].set_ylabel(label, fontsize=9)
    fig.suptitle(f"Held-out photos, working size {size}", fontsize=11)
    fig.tight_layout()
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as temporary:
        fig.savefig(temporary, format="png", dpi=80)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--photos", required=True)
    parser.add_argument("--models", required=True, help="shipped names or run folders, by commas")
    parser.add_argument("--sizes", default="64,128,256", help="working sizes (shorter side)")
    parser.add_argument(
        "--chroma-gains", default="", help="ab-regression models: gains to try besides their own"
    )
    parser.add_argument(
        "--temperatures", default="", help="ab-bins models: temperatures to try besides their own"
    )
    parser.add_argument("--results", default=str(REPO_ROOT / "docs" / "results.md"))
    parser.add_argument(
        "--picture",
        default=str(REPO_ROOT / "docs" / "images" / "photos_heldout.png"),
        help="examples from the first model at the first size of --sizes ('' for none)",
    )
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
    extra_gains = [float(g) for g in args.chroma_gains.split(",") if g]
    extra_temperatures = [float(t) for t in args.temperatures.split(",") if t]
    for reference in args.models.split(","):
        own = Colorizer.load(reference)
        variants = [(reference, own, None)]  # label, colorizer, temperature
        if own.formulation.name == "ab-regression":
            for gain in extra_gains:
                if gain != own.formulation.chroma_gain:
                    variants.append(
                        (f"{reference}, gain {gain:g}", Colorizer.load(reference, chroma_gain=gain),
                         None)
                    )  # fmt: skip
        if own.formulation.name == "ab-bins":
            for temperature in extra_temperatures:
                if temperature != own.formulation.temperature:
                    variants.append((f"{reference}, T {temperature:g}", own, temperature))
        for label, colorizer, temperature in variants:
            for size in (int(s) for s in args.sizes.split(",")):
                started = time.perf_counter()
                outputs = []
                for grey in greys:
                    image = grey[0].permute(1, 2, 0).numpy()
                    outputs.append(as_tensor(colorizer.colorize(image, size, temperature)))
                seconds = (time.perf_counter() - started) / len(greys)
                row = {"model": label, "size": size, "seconds_per_photo": seconds}
                row.update(mean_scores(zip(outputs, truths, strict=True)))
                results.append(row)
                print(json.dumps(row), flush=True)

    if args.picture:
        first_size = int(args.sizes.split(",")[0])
        first = Colorizer.load(args.models.split(",")[0])
        save_examples(first, greys, truths, first_size, Path(args.picture))

    grey_psnr = results[0]["psnr"]
    lines = [
        "## Whole held-out photos at full size",
        "",
        f"Machine: {describe_machine()}.",
        "",
        f"Command: `python benchmarks/photos.py --photos path/to/photos --models {args.models} "
        f"--sizes {args.sizes}"
        + (f" --chroma-gains {args.chroma_gains}" if args.chroma_gains else "")
        + (f" --temperatures {args.temperatures}" if args.temperatures else "")
        + "`",
        "",
        f"{len(held_out)} held-out photos (shorter side 256 px, or their original size when "
        "smaller), made grey with exactly their own Lab lightness, colourized at the working "
        "size and scored at full size. Rows without a gain or a temperature use the model's own.",
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
    save_results("photos", {"machine": describe_machine(), "rows": results})


if __name__ == "__main__":
    main()

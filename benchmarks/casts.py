"""Global colour casts: does damping a picture's mean chroma at decoding time help?

Usage:
    python benchmarks/casts.py --photos DIR --model NAME_OR_RUN [--split validation]
        [--size 128] [--cast-gains 1,0.5,0] [--chroma-gains 1,1.2,1.4]

A global tint costs PSNR on every pixel, so a model that invents a cast it cannot support
loses most where it is surest. This probe splits the predicted chroma of each held-out
photo into its mean over the picture (the cast) and the rest, and decodes
`chroma_gain * (rest + cast_gain * cast)`: cast gain 1 is the plain prediction, 0 removes
the cast. Each photo is made grey with exactly its own Lab lightness and scored at full size
against its true colours. Results go into docs/results.md (section "casts").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe_machine, replace_section, save_results  # noqa: E402

from colorcnn.color.spaces import join_lightness_and_ab, rgb_to_lab  # noqa: E402
from colorcnn.data.photos import list_photos, split_photos  # noqa: E402
from colorcnn.evaluation import metrics  # noqa: E402
from colorcnn.inference import Colorizer  # noqa: E402
from colorcnn.inference.images import read_image  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
LOSS_DB = 3.0  # photos more than this below their grey picture are counted


def as_tensor(image) -> torch.Tensor:
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(pixels).permute(2, 0, 1)[None]  # (1, 3, H, W)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--photos", required=True)
    parser.add_argument("--model", default="photo")
    parser.add_argument("--split", choices=("validation", "test"), default="validation")
    parser.add_argument("--size", type=int, default=None, help="working size; the model's own")
    parser.add_argument("--cast-gains", default="1,0.5,0")
    parser.add_argument("--chroma-gains", default="1,1.2,1.4")
    parser.add_argument("--results", default=str(REPO_ROOT / "docs" / "results.md"))
    args = parser.parse_args()

    photos = getattr(split_photos(list_photos(Path(args.photos))), args.split)
    colorizer = Colorizer.load(args.model, chroma_gain=1.0)
    size = args.size or colorizer.working_size
    plain_predict_ab = colorizer.formulation.predict_ab
    decoding = {"cast_gain": 1.0, "chroma_gain": 1.0}

    def damped_predict_ab(outputs: torch.Tensor) -> torch.Tensor:
        ab = plain_predict_ab(outputs)  # (1, 2, h, w)
        cast = ab.mean(dim=(2, 3), keepdim=True)
        return decoding["chroma_gain"] * (ab - cast + decoding["cast_gain"] * cast)

    colorizer.formulation.predict_ab = damped_predict_ab
    cast_gains = [float(g) for g in args.cast_gains.split(",")]
    chroma_gains = [float(g) for g in args.chroma_gains.split(",")]
    scores: dict[tuple[float, float], list[tuple[float, float, float]]] = {}
    for path in photos:
        truth = torch.from_numpy(read_image(path).rgb_rows(slice(None))).permute(2, 0, 1)[None]
        grey = join_lightness_and_ab(rgb_to_lab(truth)[:, :1], torch.zeros_like(truth[:, :2]))
        grey_psnr = float(metrics.psnr_per_image(grey, truth)[0])
        truth_colour = float(metrics.colourfulness(truth)[0])
        image = grey[0].permute(1, 2, 0).numpy()
        for cast_gain in cast_gains:
            for chroma_gain in chroma_gains:
                decoding.update(cast_gain=cast_gain, chroma_gain=chroma_gain)
                output = as_tensor(colorizer.colorize(image, size))
                scores.setdefault((cast_gain, chroma_gain), []).append((
                    float(metrics.psnr_per_image(output, truth)[0]) - grey_psnr,
                    float(metrics.colourfulness(output)[0]), truth_colour,
                ))  # fmt: skip

    rows = []
    for (cast_gain, chroma_gain), values in scores.items():
        table = np.array(values)
        rows.append({
            "cast_gain": cast_gain, "chroma_gain": chroma_gain,
            "vs_grey": float(table[:, 0].mean()),
            "below_grey": int((table[:, 0] < -LOSS_DB).sum()),
            "colourfulness_share": float(table[:, 1].mean() / table[:, 2].mean()),
        })  # fmt: skip
        print(rows[-1], flush=True)
    lines = [
        "## Global casts: damping the mean chroma at decoding time",
        "",
        f"Machine: {describe_machine()}.",
        "",
        f"Command: `python benchmarks/casts.py --photos path/to/photos --model {args.model} "
        f"--split {args.split} --size {size} --cast-gains {args.cast_gains} "
        f"--chroma-gains {args.chroma_gains}`",
        "",
        f"{len(photos)} photos of the {args.split} sources. Decoded chroma = chroma gain x "
        "(prediction - its mean over the picture + cast gain x that mean).",
        "",
        "| cast gain | chroma gain | PSNR vs grey dB | > 3 dB below grey | colourfulness, "
        "share of truth |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['cast_gain']:g} | {row['chroma_gain']:g} | {row['vs_grey']:+.2f} | "
            f"{row['below_grey']} | {100 * row['colourfulness_share']:.0f}% |"
        )
    replace_section(Path(args.results), "casts", "\n".join(lines))
    save_results("casts", {"machine": describe_machine(), "model": args.model, "rows": rows})


if __name__ == "__main__":
    main()

"""Colourizing with colour hints taken from the truth: quality against the number of hints.

Usage:
    python benchmarks/hints.py --photos DIR --cifar DIR --models NAME_OR_RUN[,...]
        [--counts 0,1,2,5,10,20,50,100] [--cifar-limit 200] [--limit N]
        [--results docs/results.md] [--json benchmarks/results/hints.json]
        [--plot docs/images/hints_psnr.png]

The protocol (fixed and seeded, so that every run and every model sees the same hints):
- Photos: those of the held-out test sources of `colorcnn.data.photos` (split by source),
  each turned grey with exactly its own Lab lightness. CIFAR-10: the first `--cifar-limit`
  images of the horse test split, in the order of the test batch.
- For an image and a number of hints k, a generator seeded with (the image's index,
  k) draws k points uniformly over the image. Each hint is the square of side
  max(1, round(6 / 256 of the shorter side)) px around its point (Zhang et al.'s 6 x 6
  patches at 256 px), its colour the square's mean true Lab colour turned into 8-bit sRGB;
  only its chroma is used. Hints go in as a user's would: `Colorizer.colorize_loaded(...,
  hints=[Hint(x, y, colour, size)])`, at the model's own working size.
- Scores at the image's full size against the truth: PSNR, SSIM, colourfulness, and the
  mean Lab ab error of the output over the hinted squares (how well a hint is kept).

Zhang et al. (SIGGRAPH 2017) report, on 1000 ImageNet images at 256 px, with 6 x 6 hints of
the true mean colour at random places, PSNR 24.43 / 25.37 / 26.20 / 27.39 / 28.42 / 29.34 /
30.42 / 31.13 dB for 0 / 1 / 2 / 5 / 10 / 20 / 50 / 100 hints; the report puts that row
beside ours (other images, other sizes: a reference, not a race).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe_machine, replace_section, save_results  # noqa: E402

from colorcnn.color.hints import Hint  # noqa: E402
from colorcnn.color.spaces import join_lightness_and_ab, lab_to_rgb, rgb_to_lab  # noqa: E402
from colorcnn.data.datasets import DataSettings, load_course_data  # noqa: E402
from colorcnn.data.photos import list_photos, split_photos  # noqa: E402
from colorcnn.evaluation import metrics  # noqa: E402
from colorcnn.files import atomic_path  # noqa: E402
from colorcnn.inference import Colorizer  # noqa: E402
from colorcnn.inference.images import from_array, read_image  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RESULTS = REPO_ROOT / "docs" / "results.md"
DEFAULT_JSON = REPO_ROOT / "benchmarks" / "results" / "hints.json"
DEFAULT_PLOT = REPO_ROOT / "docs" / "images" / "hints_psnr.png"
COUNTS = (0, 1, 2, 5, 10, 20, 50, 100)
ZHANG_PSNR = dict(
    zip(COUNTS, (24.43, 25.37, 26.20, 27.39, 28.42, 29.34, 30.42, 31.13), strict=True)
)
PATCH_SHARE = 6 / 256  # Zhang et al.'s 6 px hints on 256 px images


def truth_hints(truth: torch.Tensor, count: int, seed: int) -> list[Hint]:
    """`count` hints from the true RGB picture (1, 3, H, W) in [0, 1], by the protocol."""
    height, width = truth.shape[-2:]
    side = max(1, round(PATCH_SHARE * min(height, width)))
    generator = torch.Generator().manual_seed(seed)
    xs = torch.randint(0, width, (count,), generator=generator).tolist()
    ys = torch.randint(0, height, (count,), generator=generator).tolist()
    lab = rgb_to_lab(truth)
    hints = []
    for x, y in zip(xs, ys, strict=True):
        top, left = max(y - (side - 1) // 2, 0), max(x - (side - 1) // 2, 0)
        mean = lab[:, :, top : top + side, left : left + side].mean(dim=(2, 3), keepdim=True)
        colour = (lab_to_rgb(mean)[0, :, 0, 0] * 255).round().to(torch.uint8).tolist()
        hints.append(Hint(x, y, tuple(colour), size=side))
    return hints


def hinted_ab_error(output: torch.Tensor, hints: list[Hint]) -> float | None:
    """Mean |ab| distance between the output and the hints' chroma over the hinted squares."""
    if not hints:
        return None
    ab = rgb_to_lab(output)[0, 1:]
    errors = []
    for hint in hints:
        side = int(hint.size)
        top, left = max(int(hint.y) - (side - 1) // 2, 0), max(int(hint.x) - (side - 1) // 2, 0)
        patch = ab[:, top : top + side, left : left + side].reshape(2, -1)
        errors.append((patch - hint.ab().view(2, 1)).norm(dim=0))
    return float(torch.cat(errors).mean())


def score(output: torch.Tensor, truth: torch.Tensor) -> dict[str, float]:
    return {
        "psnr": float(metrics.psnr_per_image(output, truth)[0]),
        "ssim": float(metrics.ssim_per_image(output, truth)[0]),
        "colourfulness": float(metrics.colourfulness(output)[0]),
    }


def as_tensor(image) -> torch.Tensor:
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(array).permute(2, 0, 1)[None]


def grey_of(truth: torch.Tensor) -> np.ndarray:
    """The truth with its own Lab lightness and no chroma, as 8-bit RGB (H, W, 3)."""
    lab = rgb_to_lab(truth)
    grey = join_lightness_and_ab(lab[:, :1], torch.zeros_like(lab[:, 1:]))
    return (grey[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def measure(colorizer: Colorizer, images: list[torch.Tensor], counts: list[int]) -> dict:
    rows = {count: [] for count in counts}
    seconds = 0.0
    for index, truth in enumerate(images):
        grey = from_array(grey_of(truth))
        for count in counts:
            hints = truth_hints(truth, count, seed=index * 1000 + count)
            started = time.perf_counter()
            output = as_tensor(colorizer.colorize_loaded(grey, hints=hints))
            seconds += time.perf_counter() - started
            row = score(output, truth)
            row["ab_error_at_hints"] = hinted_ab_error(output, hints)
            rows[count].append(row)
    summary = {}
    for count, scored in rows.items():
        errors = [
            row["ab_error_at_hints"] for row in scored if row["ab_error_at_hints"] is not None
        ]
        summary[str(count)] = {
            "images": len(scored),
            "psnr": float(np.mean([row["psnr"] for row in scored])),
            "psnr_worst": float(np.min([row["psnr"] for row in scored])),
            "ssim": float(np.mean([row["ssim"] for row in scored])),
            "colourfulness": float(np.mean([row["colourfulness"] for row in scored])),
            "ab_error_at_hints": float(np.mean(errors)) if errors else None,
        }
    summary["seconds_per_image"] = seconds / (len(images) * len(counts))
    return summary


def table(label: str, summaries: dict[str, dict], counts: list[int], zhang: bool) -> str:
    header = "| model | " + " | ".join(str(count) for count in counts) + " |"
    lines = [f"**{label}**, PSNR dB by number of hints (gain over 0 hints in brackets):", "",
             header, "|---|" + "---|" * len(counts)]  # fmt: skip
    for model, summary in summaries.items():
        base = summary["0"]["psnr"] if "0" in summary else None
        cells = []
        for count in counts:
            psnr = summary[str(count)]["psnr"]
            gain = f" (+{psnr - base:.2f})" if base is not None and count else ""
            cells.append(f"{psnr:.2f}{gain}")
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    if zhang:
        lines.append(
            "| Zhang et al. 2017 (ImageNet, 256 px) | "
            + " | ".join(
                f"{ZHANG_PSNR[count]:.2f}" if count in ZHANG_PSNR else "-" for count in counts
            )  # fmt: skip
            + " |"
        )
    lines += ["", "SSIM, colourfulness and the mean ab error over the hinted squares:", "",
              "| model | hints | SSIM | colourfulness | ab error at hints | worst PSNR |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    for model, summary in summaries.items():
        for count in counts:
            row = summary[str(count)]
            error = "-" if row["ab_error_at_hints"] is None else f"{row['ab_error_at_hints']:.1f}"
            lines.append(
                f"| {model} | {count} | {row['ssim']:.4f} | {row['colourfulness']:.1f} | "
                f"{error} | {row['psnr_worst']:.2f} |"
            )
    return "\n".join(lines)


def plot(results: dict[str, dict[str, dict]], counts: list[int], target: Path) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4))
    axis = figure.subplots()
    positions = list(range(len(counts)))
    for (dataset, model), summary in (
        ((dataset, model), summary)
        for dataset, by_model in results.items()
        for model, summary in by_model.items()
    ):
        axis.plot(positions, [summary[str(c)]["psnr"] for c in counts], "o-",
                  label=f"{model}, {dataset}")  # fmt: skip
    axis.plot(positions, [ZHANG_PSNR.get(c, np.nan) for c in counts], "k--",
              label="Zhang et al. 2017, ImageNet")  # fmt: skip
    axis.set_xticks(positions, [str(c) for c in counts])
    axis.set_xlabel("hints (points of the true colour)")
    axis.set_ylabel("PSNR (dB)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp_path:
        figure.savefig(tmp_path, format="png", dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", help="folder of colour photos (with SOURCES.tsv)")
    parser.add_argument("--cifar", help="CIFAR-10 folder (batches or image-folder tree)")
    parser.add_argument("--models", required=True, help="shipped names or run folders, by commas")
    parser.add_argument("--counts", default=",".join(map(str, COUNTS)))
    parser.add_argument("--cifar-limit", type=int, default=200, help="horse test images")
    parser.add_argument("--limit", type=int, help="score only the first N photos")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    parser.add_argument("--plot", type=Path, default=DEFAULT_PLOT)
    args = parser.parse_args()
    counts = [int(part) for part in args.counts.split(",")]
    torch.set_grad_enabled(False)
    machine = describe_machine()
    print(machine, flush=True)

    datasets: dict[str, list[torch.Tensor]] = {}
    if args.photos:
        split = split_photos(list_photos(Path(args.photos)))
        paths = split.test[: args.limit] if args.limit else split.test
        datasets["held-out photos"] = [
            torch.from_numpy(read_image(path).rgb_rows(slice(None))).permute(2, 0, 1)[None]
            for path in paths
        ]
    if args.cifar:
        data = load_course_data(
            DataSettings(data=args.cifar, category="horse"), show_progress=False
        )
        # Course scale (uint8 / 256) back to [0, 1].
        horses = (data.test_rgb[: args.cifar_limit] * 256 / 255).clamp(0, 1)
        datasets["CIFAR-10 horses"] = [image[None] for image in horses]
    if not datasets:
        parser.error("give --photos, --cifar or both")

    results: dict[str, dict[str, dict]] = {name: {} for name in datasets}
    for model in args.models.split(","):
        colorizer = Colorizer.load(model)
        if not colorizer.takes_hints:
            print(f"{model}: takes no hints; scored without them only", flush=True)
        for dataset, images in datasets.items():
            own_counts = counts if colorizer.takes_hints else [0]
            started = time.perf_counter()
            results[dataset][model] = measure(colorizer, images, own_counts)
            print(f"{model} on {len(images)} {dataset}: {time.perf_counter() - started:.0f} s",
                  flush=True)  # fmt: skip

    sections = []
    for dataset, by_model in results.items():
        scored = {m: s for m, s in by_model.items() if all(str(c) in s for c in counts)}
        automatic = {m: s for m, s in by_model.items() if m not in scored}
        text = table(f"{dataset} ({len(datasets[dataset])} images)", scored, counts, zhang=True)
        if automatic:
            text += "\n\nWithout hints: " + ", ".join(
                f"{m} {s['0']['psnr']:.2f} dB" for m, s in automatic.items()
            )
        sections.append(text)
    hinted = {d: {m: s for m, s in b.items() if all(str(c) in s for c in counts)}
              for d, b in results.items()}  # fmt: skip
    plot(hinted, counts, args.plot)
    command = (
        "python benchmarks/hints.py"
        + (" --photos path/to/photos" if args.photos else "")
        + (f" --cifar path/to/cifar10 --cifar-limit {args.cifar_limit}" if args.cifar else "")
        + f" --models {shlex.quote(args.models)} --counts {args.counts}"
        + (f" --limit {args.limit}" if args.limit else "")
    )
    body = "\n\n".join(
        [
            "### Colour hints\n",
            f"Machine: {machine}.  \nCommand: `{command}`. Protocol: the docstring of "
            "benchmarks/hints.py.",
            *sections,
            f"![PSNR against the number of hints]"
            f"({os.path.relpath(args.plot.resolve(), args.results.resolve().parent)})",
        ]
    )
    replace_section(args.results, "hints", body)
    save_results("hints", {"machine": machine, "counts": counts, "results": results}, args.json)
    print(body)


if __name__ == "__main__":
    main()

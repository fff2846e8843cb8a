"""Colourizing whole held-out photos at their full size, against their true colours.

Usage:
    python benchmarks/photos.py --photos DIR --models NAME_OR_RUN[,...] [--sizes 64,128,256]
        [--split test|validation] [--chroma-gains 1.0,1.15,1.3] [--temperatures 0.2,0.38,1.0]
        [--baseline NAME_OR_RUN] [--baseline-size SIZE] [--limit N]
        [--results docs/results.md] [--json benchmarks/results/photos.json]
        [--picture docs/images/photos_heldout.png] [--picture-count 6]

The photos of the held-out sources of `colorcnn.data.photos` (split by source: `--split
test`, the default, takes the sources never trained on nor used to pick a checkpoint;
`--split validation` those that scored epochs) are each turned grey with exactly their own
Lab lightness, colourized by `Colorizer` at each working size, and scored at full
resolution against the original: PSNR, SSIM, colourfulness and the mean-chroma error (the
distance in Lab ab between the prediction's mean ab and the truth's over the whole photo,
which measures global colour casts), beside the grey input itself.

Every model variant is summed up over all photos and per source, with the photos on which
it loses most against grey. `--baseline` adds the share of photos on which the first model
(at the first size) beats the baseline, and the report says how many of the scored photos
the old file-hash split had put in training (the models shipped before the split by source
saw them). Results go into docs/results.md (section "photos") and, one row per photo, model
and size so that others can recompute any summary, benchmarks/results/photos.json.
`--limit N` scores only the first N photos, for quick trials.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe_machine, replace_section, save_results  # noqa: E402

from colorcnn.color.spaces import join_lightness_and_ab, rgb_to_lab  # noqa: E402
from colorcnn.data.photos import hash_share, list_photos, split_photos  # noqa: E402
from colorcnn.evaluation import metrics  # noqa: E402
from colorcnn.files import atomic_path  # noqa: E402
from colorcnn.inference import Colorizer  # noqa: E402
from colorcnn.inference.images import read_image  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RESULTS = REPO_ROOT / "docs" / "results.md"
DEFAULT_JSON = REPO_ROOT / "benchmarks" / "results" / "photos.json"
DEFAULT_PICTURE = REPO_ROOT / "docs" / "images" / "photos_heldout.png"
# The split that trained every model shipped before the split by source: a photo was held
# out when the hash of its file name fell below this share.
OLD_HELD_OUT_SHARE = 0.15
LOSS_DB = 3.0  # a photo "lost" when its PSNR is more than this below the grey picture's
WORST_COUNT = 5  # photos listed as each model's worst against grey
GREY = "grey input"


def held_out_by_file_hash(path: Path) -> bool:
    """Whether the old file-name hash split held this photo out; the models shipped before
    the split by source trained on every photo it did not."""
    return hash_share(Path(path).name) < OLD_HELD_OUT_SHARE


@dataclass(eq=False)
class Photo:
    path: Path
    source: str
    truth: torch.Tensor  # (1, 3, H, W) RGB in [0, 1]
    grey: torch.Tensor  # the same lightness with no chroma
    mean_ab: torch.Tensor  # (2,) the truth's mean Lab ab
    colourfulness: float

    @property
    def name(self) -> str:
        return self.path.name


def load_photo(path: Path, source: str) -> Photo:
    truth = torch.from_numpy(read_image(path).rgb_rows(slice(None))).permute(2, 0, 1)[None]
    lab = rgb_to_lab(truth)
    grey = join_lightness_and_ab(lab[:, :1], torch.zeros_like(lab[:, 1:]))
    return Photo(
        path,
        source,
        truth,
        grey,
        lab[0, 1:].mean(dim=(1, 2)),
        float(metrics.colourfulness(truth)[0]),
    )


def as_tensor(image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255).permute(
        2, 0, 1
    )[None]


def score(predicted: torch.Tensor, photo: Photo) -> dict[str, float]:
    mean_ab = rgb_to_lab(predicted)[0, 1:].mean(dim=(1, 2))
    return {
        "psnr": float(metrics.psnr_per_image(predicted, photo.truth)[0]),
        "ssim": float(metrics.ssim_per_image(predicted, photo.truth)[0]),
        "colourfulness": float(metrics.colourfulness(predicted)[0]),
        "chroma_error": float((mean_ab - photo.mean_ab).norm()),
    }


def summarise(rows: list[dict], truth_colourfulness: dict[str, float]) -> dict:
    """Means over photos; colourfulness as a share of the truth's (ratio of means); photos
    more than LOSS_DB below grey; the mean and worst mean-chroma error; the worst photos."""
    losses = sorted((row["psnr"] - row["psnr_grey"], row["file"]) for row in rows)
    cast = max(rows, key=lambda row: row["chroma_error"])
    return {
        "photos": len(rows),
        "psnr": float(np.mean([row["psnr"] for row in rows])),
        "psnr_grey": float(np.mean([row["psnr_grey"] for row in rows])),
        "vs_grey": float(np.mean([loss for loss, _ in losses])),
        # Robust to the photos whose truth has no colour at all: their grey picture scores
        # near 100 dB, so any chroma loses tens of dB there and moves the mean by whole dB.
        "vs_grey_median": float(np.median([loss for loss, _ in losses])),
        "ssim": float(np.mean([row["ssim"] for row in rows])),
        "colourfulness": float(np.mean([row["colourfulness"] for row in rows])),
        "colourfulness_share": float(
            np.mean([row["colourfulness"] for row in rows])
            / np.mean([truth_colourfulness[row["file"]] for row in rows])
        ),
        "below_grey": sum(loss < -LOSS_DB for loss, _ in losses),
        "chroma_error": float(np.mean([row["chroma_error"] for row in rows])),
        "chroma_error_worst": cast["chroma_error"],
        "chroma_error_worst_file": cast["file"],
        "worst": [{"file": name, "vs_grey": loss} for loss, name in losses[:WORST_COUNT]],
    }


def spread_over_sources(photos: list[Photo], count: int) -> list[Photo]:
    """`count` photos taken in turn from each source (sources and photos by name)."""
    by_source: dict[str, list[Photo]] = {}
    for photo in sorted(photos, key=lambda photo: photo.name):
        by_source.setdefault(photo.source, []).append(photo)
    queues = [by_source[source] for source in sorted(by_source)]
    chosen: list[Photo] = []
    for turn in range(max(map(len, queues), default=0)):
        chosen += [queue[turn] for queue in queues if turn < len(queue)]
    return chosen[:count]


def save_grid(
    photos: list[Photo], outputs: dict[str, dict[str, np.ndarray]], title: str, target: Path
) -> None:
    """Rows: grey input, truth, then each model; one column per photo."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(GREY, {p.name: p.grey[0].permute(1, 2, 0).numpy() for p in photos})]
    rows.append(("truth", {p.name: p.truth[0].permute(1, 2, 0).numpy() for p in photos}))
    rows += list(outputs.items())
    fig, axes = plt.subplots(
        len(rows), len(photos), figsize=(2.6 * len(photos), 2.1 * len(rows) + 0.5), squeeze=False
    )
    for row, (label, pictures) in enumerate(rows):
        for column, photo in enumerate(photos):
            axis = axes[row][column]
            axis.imshow(pictures[photo.name])
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(photo.source.replace("/", "/\n"), fontsize=7)
            if column == 0:
                axis.set_ylabel(label, fontsize=9)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    with atomic_path(target) as temporary:
        fig.savefig(temporary, format="png", dpi=80)
    plt.close(fig)


def command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this run: every option that shapes the scores, and the
    outputs where they are not the defaults."""
    options = [("--photos", args.photos), ("--models", args.models), ("--sizes", args.sizes)]
    options += [("--split", args.split)]
    options += [("--chroma-gains", args.chroma_gains), ("--temperatures", args.temperatures)]
    if args.baseline:
        options += [("--baseline", args.baseline), ("--baseline-size", args.baseline_size)]
    options += [("--limit", args.limit)]
    if args.section != "photos":
        options += [("--section", args.section), ("--title", args.title)]
    for option, value, default in (
        ("--results", args.results, DEFAULT_RESULTS),
        ("--json", args.json, DEFAULT_JSON),
        ("--picture", args.picture, DEFAULT_PICTURE),
    ):
        if not value or Path(value).resolve() != default:
            options.append((option, value))
    if args.picture:
        options.append(("--picture-count", args.picture_count))
    words = ["python", "benchmarks/photos.py"]
    for option, value in options:
        if value is not None and (value != "" or option == "--picture"):
            words += [option, shlex.quote(str(value))]
    return " ".join(words)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--photos", required=True)
    parser.add_argument("--models", required=True, help="shipped names or run folders, by commas")
    parser.add_argument("--sizes", default="64,128,256", help="working sizes (shorter side)")
    parser.add_argument(
        "--split",
        choices=("test", "validation"),
        default="test",
        help="held-out sources to score: test (never trained on nor used to pick a checkpoint) "
        "or validation (scored every epoch)",
    )
    parser.add_argument(
        "--chroma-gains", default="", help="ab-regression models: gains to try besides their own"
    )
    parser.add_argument(
        "--temperatures", default="", help="ab-bins models: temperatures to try besides their own"
    )
    parser.add_argument(
        "--baseline",
        default="",
        help="a model to compare the first one with, photo by photo (PSNR at the first size)",
    )
    parser.add_argument(
        "--baseline-size",
        type=int,
        default=None,
        help="the baseline's working size (default: the first of --sizes)",
    )
    parser.add_argument(
        "--limit", type=int, default=None, help="score only the first N photos (quick trials)"
    )
    parser.add_argument("--results", default=str(DEFAULT_RESULTS))
    parser.add_argument(
        "--section", default="photos",
        help="the marked section of --results to write, and its title (photos: the default)",
    )  # fmt: skip
    parser.add_argument("--title", default="Whole held-out photos at full size")
    parser.add_argument("--json", default=str(DEFAULT_JSON), help="per-photo scores")
    parser.add_argument(
        "--picture",
        default=str(DEFAULT_PICTURE),
        help="grey input, truth and each model at the first size of --sizes ('' for none)",
    )
    parser.add_argument(
        "--picture-count", type=int, default=6, help="photos in the picture, spread over sources"
    )
    args = parser.parse_args()

    models = [model for model in args.models.split(",") if model]
    sizes = [int(size) for size in args.sizes.split(",") if size]
    if not models or not sizes:
        parser.error("--models and --sizes need at least one entry each")
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    first_size = sizes[0]
    if args.baseline and args.baseline_size is None:
        args.baseline_size = first_size

    split = split_photos(list_photos(Path(args.photos)))
    paths = split.test if args.split == "test" else split.validation
    if not paths:
        parser.error(f"{args.photos} has no photos of {args.split} sources")
    paths = paths[: args.limit]
    photos = [load_photo(path, split.source_of(path)) for path in paths]
    truth_colourfulness = {photo.name: photo.colourfulness for photo in photos}
    counts: dict[str, int] = {}
    for photo in photos:
        counts[photo.source] = counts.get(photo.source, 0) + 1
    pictured = spread_over_sources(photos, args.picture_count) if args.picture else []
    pictured_names = {photo.name for photo in pictured}

    rows: list[dict] = []  # one per photo, model variant and size
    grey_psnr: dict[str, float] = {}
    for photo in photos:
        scores = score(photo.grey, photo)
        grey_psnr[photo.name] = scores["psnr"]
        rows.append({"file": photo.name, "source": photo.source, "model": GREY, "size": "-",
                     **scores, "psnr_grey": scores["psnr"]})  # fmt: skip
    variants_run: list[tuple[str, object, float]] = [(GREY, "-", 0.0)]  # label, size, s/photo
    outputs: dict[str, dict[str, np.ndarray]] = {}  # pictured colourizations by model

    def run(label: str, colorizer: Colorizer, temperature: float | None, size: int) -> None:
        keep = (label in models and size == first_size) or (
            label == args.baseline and size == args.baseline_size
        )
        colorizer.colorize(photos[0].grey[0].permute(1, 2, 0).numpy(), size, temperature)  # warm-up
        seconds = 0.0  # colourizing only, not scoring
        for photo in photos:
            image = photo.grey[0].permute(1, 2, 0).numpy()
            started = time.perf_counter()
            colourized = colorizer.colorize(image, size, temperature)
            seconds += time.perf_counter() - started
            predicted = as_tensor(colourized)
            rows.append({"file": photo.name, "source": photo.source, "model": label,
                         "size": size, **score(predicted, photo),
                         "psnr_grey": grey_psnr[photo.name]})  # fmt: skip
            if keep and photo.name in pictured_names:
                outputs.setdefault(label, {})[photo.name] = predicted[0].permute(1, 2, 0).numpy()
        variants_run.append((label, size, seconds / len(photos)))
        mine = [row for row in rows if row["model"] == label and row["size"] == size]
        overall = summarise(mine, truth_colourfulness)
        shown = {key: overall[key] for key in ("psnr", "vs_grey", "colourfulness_share")}
        print(json.dumps({"model": label, "size": size, **shown}), flush=True)

    extra_gains = [float(g) for g in args.chroma_gains.split(",") if g]
    extra_temperatures = [float(t) for t in args.temperatures.split(",") if t]
    for reference in models:
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
            for size in sizes:
                run(label, colorizer, temperature, size)
    if args.baseline and (args.baseline, args.baseline_size) not in {
        (label, size) for label, size, _ in variants_run
    }:
        run(args.baseline, Colorizer.load(args.baseline), None, args.baseline_size)

    def rows_of(label: str, size: object, source: str | None = None) -> list[dict]:
        return [row for row in rows if row["model"] == label and row["size"] == size
                and (source is None or row["source"] == source)]  # fmt: skip

    summaries = []
    for label, size, seconds in variants_run:
        summaries.append({
            "model": label, "size": size, "seconds_per_photo": seconds,
            "overall": summarise(rows_of(label, size), truth_colourfulness),
            "sources": {source: summarise(rows_of(label, size, source), truth_colourfulness)
                        for source in sorted(counts)},
        })  # fmt: skip

    trained_before = [photo for photo in photos if not held_out_by_file_hash(photo.path)]
    old_split = (
        f"{len(trained_before)} of the {len(photos)} photos were in the training side of the "
        "old file-hash split, so the older models saw them"
    )
    comparison = None
    if args.baseline:
        mine = {row["file"]: row["psnr"] for row in rows_of(models[0], first_size)}
        theirs = {row["file"]: row["psnr"] for row in rows_of(args.baseline, args.baseline_size)}
        wins = [name for name in mine if mine[name] > theirs[name]]
        unseen = {photo.name for photo in photos} - {photo.name for photo in trained_before}
        unseen_wins = [name for name in wins if name in unseen]
        comparison = {
            "model": models[0], "size": first_size, "baseline": args.baseline,
            "baseline_size": args.baseline_size, "photos": len(mine), "wins": len(wins),
            "unseen_photos": len(unseen), "unseen_wins": len(unseen_wins),
        }  # fmt: skip

    if pictured:
        save_grid(
            pictured,
            {model: outputs[model] for model in [*models, args.baseline] if model in outputs},
            f"Held-out {args.split} photos; working size {first_size}"
            + (f", {args.baseline} at {args.baseline_size}" if args.baseline else ""),
            Path(args.picture),
        )

    which = "never trained on nor used to pick a checkpoint" if args.split == "test" else (
        "never trained on, but used to pick checkpoints"
    )  # fmt: skip
    lines = [
        f"## {args.title}",
        "",
        f"Machine: {describe_machine()}.",
        "",
        f"Command: `{command_line(args)}`",
        "",
        f"{len(photos)} photos of {len(counts)} {args.split} "
        + ("source" if len(counts) == 1 else "sources")
        + f" ({which}): "
        + ", ".join(f"{source} ({count})" for source, count in sorted(counts.items()))
        + ". Each photo (shorter side 256 px, or its original size when smaller) is made grey "
        "with exactly its own Lab lightness, colourized at the working size and scored at full "
        "size. Rows without a gain or a temperature use the model's own. `vs grey` is the mean "
        "PSNR minus the grey picture's, `median` the median of the photos' differences; "
        f"`> {LOSS_DB:g} dB below` counts the photos scoring more "
        f"than {LOSS_DB:g} dB below their grey picture; `cast` is the mean-chroma error, the "
        "distance in Lab ab between the mean ab of the prediction and of the truth over the "
        "whole photo (a global colour cast; the grey input's is the truth's own mean chroma), "
        "its mean and worst over the photos.",
        "",
        "| model | working size | PSNR dB | vs grey | median | SSIM | colourfulness "
        f"| share of truth | > {LOSS_DB:g} dB below | cast mean | cast worst | s / photo |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for summary in summaries:
        o = summary["overall"]
        seconds = "-" if summary["model"] == GREY else f"{summary['seconds_per_photo']:.3f}"
        lines.append(
            f"| {summary['model']} | {summary['size']} | {o['psnr']:.2f} | {o['vs_grey']:+.2f} "
            f"| {o['vs_grey_median']:+.2f} | {o['ssim']:.4f} | {o['colourfulness']:.1f} "
            f"| {100 * o['colourfulness_share']:.0f}% "
            f"| {o['below_grey']} | {o['chroma_error']:.1f} | {o['chroma_error_worst']:.1f} "
            f"| {seconds} |"
        )
    first = next(s for s in summaries if s["model"] == models[0] and s["size"] == first_size)
    grey = summaries[0]
    lines += [
        "",
        f"By source, {models[0]} at {first_size} px:",
        "",
        f"| source | photos | grey PSNR dB | PSNR dB | vs grey | median | share of truth "
        f"| > {LOSS_DB:g} dB below | cast mean | cast worst |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for source, s in first["sources"].items():
        lines.append(
            f"| {source} | {s['photos']} | {grey['sources'][source]['psnr']:.2f} "
            f"| {s['psnr']:.2f} | {s['vs_grey']:+.2f} | {s['vs_grey_median']:+.2f} "
            f"| {100 * s['colourfulness_share']:.0f}% "
            f"| {s['below_grey']} | {s['chroma_error']:.1f} | {s['chroma_error_worst']:.1f} |"
        )
    lines += [
        "",
        f"Each model's {WORST_COUNT} worst photos against grey (PSNR minus grey's, dB):",
        "",
    ]
    for summary in summaries:
        if summary["model"] in models and summary["size"] == first_size:
            worst = summary["overall"]["worst"]
            lines.append(
                f"- {summary['model']} at {first_size} px: "
                + ", ".join(f"{w['file']} ({w['vs_grey']:+.2f})" for w in worst)
            )
    lines += ["", f"{old_split}."]
    if comparison:
        c = comparison
        lines[-1] = (
            f"{models[0]} beats {args.baseline} on {c['wins']} of {c['photos']} photos "
            f"({100 * c['wins'] / c['photos']:.0f}%), photo by photo in PSNR ({models[0]} at "
            f"{first_size} px, {args.baseline} at {args.baseline_size} px). {old_split}; on the "
            f"other {c['unseen_photos']}, {models[0]} beats {args.baseline} on {c['unseen_wins']}."
        )
    text = "\n".join(lines)
    print(text, flush=True)
    replace_section(Path(args.results), args.section, text)
    payload = {
        "machine": describe_machine(),
        "command": command_line(args),
        "split": args.split,
        "sources": counts,
        "photos": [
            {
                "file": photo.name,
                "source": photo.source,
                "old_split_train": not held_out_by_file_hash(photo.path),
            }
            for photo in photos
        ],  # fmt: skip
        "rows": rows,
        "summaries": summaries,
        "baseline": comparison,
    }
    save_results("photos", payload, Path(args.json))


if __name__ == "__main__":
    main()

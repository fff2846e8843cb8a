"""Mixed precision against fp32: the course UNet's 25 epochs and the shipped photo model.

Usage:
    python benchmarks/precision.py --data path/to/cifar10 --photos path/to/photos
        [--epochs 25] [--reference-epochs 3] [--skip-course] [--skip-photos]

In one run, on one machine:

- the course UNet as `colorcnn train --data DATA` runs it with its default settings
  (horse, 25 epochs, batch 100, Adam 0.001, seed 0, `--precision auto`), and again with
  `--precision fp32`, each timed as a whole command, with its final validation accuracy
  and PSNR; beside them, a plain eager fp32 PyTorch epoch (NCHW, Adam, cross-entropy, the
  same images, then the validation pass), timed before and after the two runs, so that
  "x the reference per epoch" compares epochs of the same moment;
- the shipped `photo` model on the photos of the held-out test sources (never trained on),
  each made grey with its own Lab lightness and colourized at the model's working size in
  fp32 and in bf16: PSNR against the truth, its mean and the photos on which the two
  precisions differ most.

Results go into docs/results.md (section "precision") and benchmarks/results/precision.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe_machine, replace_section, save_results  # noqa: E402
from photos import as_tensor, load_photo, score  # noqa: E402

from colorcnn.data.photos import list_photos, read_sources_table, split_photos  # noqa: E402
from colorcnn.inference import Colorizer  # noqa: E402
from colorcnn.runtime import cpu_capabilities, resolve_precision  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
WORST = 3

# A plain eager fp32 epoch of the course UNet, as anyone would write it: run in its own
# process, like the commands it is compared with.
_REFERENCE = """
import json, sys, time
import torch
import torch.nn.functional as F
from colorcnn.color import fit_palette
from colorcnn.data import DataSettings
from colorcnn.data.datasets import load_course_data
from colorcnn.formulations import build_formulation
from colorcnn.models import create_model

data, epochs = sys.argv[1], int(sys.argv[2])
images = load_course_data(DataSettings(data, category="horse"), show_progress=False)
palette = fit_palette(images.train_rgb, 24, seed=0)
formulation = build_formulation("palette-rgb", palette, train_rgb=images.train_rgb)
x, y = formulation.inputs(images.train_rgb), formulation.training_targets(images.train_rgb)
vx, vy = formulation.inputs(images.test_rgb), formulation.training_targets(images.test_rgb)
torch.manual_seed(0)
model = create_model("unet", out_channels=24)
optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
seconds = []
for epoch in range(epochs):
    started = time.perf_counter()
    model.train()
    for start in range(0, len(x), 100):
        optimizer.zero_grad()
        F.cross_entropy(model(x[start:start + 100]), y[start:start + 100]).backward()
        optimizer.step()
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(vx), 100):
            outputs = model(vx[start:start + 100])
            F.cross_entropy(outputs, vy[start:start + 100])
            correct += (outputs.argmax(1) == vy[start:start + 100]).sum().item()
    seconds.append(time.perf_counter() - started)
print(json.dumps({"seconds": seconds, "val_acc": 100 * correct / vy.numel()}))
"""


def reference_epochs(data: str, epochs: int) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", _REFERENCE, data, str(epochs)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def course_run(data: str, epochs: int, precision: str, folder: Path) -> dict:
    command = [sys.executable, "-m", "colorcnn", "train", "--data", data, "--epochs", str(epochs),
               "--out", str(folder), "--no-progress"]  # fmt: skip
    if precision != "auto":
        command += ["--precision", precision]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - started
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    config = json.loads((folder / "config.json").read_text())
    final = records[-1]
    return {
        "asked": precision,
        "precision": config["precision"],
        "wall_seconds": wall,
        "epoch_seconds": statistics.median(record["seconds"] for record in records),
        "final_val_acc": final["val_acc"],
        "final_psnr": final["psnr"],
        "best_val_acc": max(record["val_acc"] for record in records),
        "final_val_loss": final["val_loss"],
    }


def course(args: argparse.Namespace) -> dict:
    before = reference_epochs(args.data, args.reference_epochs)
    print(f"reference before: {before['seconds']}", flush=True)
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for precision in ("auto", "fp32"):
            runs[precision] = course_run(args.data, args.epochs, precision, Path(tmp) / precision)
            print(json.dumps(runs[precision]), flush=True)
    after = reference_epochs(args.data, args.reference_epochs)
    print(f"reference after: {after['seconds']}", flush=True)
    # The first epoch of a process warms up its allocator and kernels: left out.
    reference = statistics.median(before["seconds"][1:] + after["seconds"][1:])
    return {"reference_epoch_seconds": reference, "runs": runs}


def photos(args: argparse.Namespace) -> dict:
    folder = Path(args.photos)
    split = split_photos(list_photos(folder), packages=read_sources_table(folder))
    test = [load_photo(path, split.source_of(path)) for path in split.test]
    colorizers = {name: Colorizer.load("photo", precision=name) for name in ("fp32", "bf16")}
    rows = []
    for photo in test:
        grey = photo.grey[0].permute(1, 2, 0).numpy()
        row = {"photo": photo.name, "source": photo.source}
        for name, colorizer in colorizers.items():
            row[name] = score(as_tensor(colorizer.colorize(grey)), photo)["psnr"]
        rows.append(row)
    differences = [row["bf16"] - row["fp32"] for row in rows]
    return {
        "photos": len(rows),
        "sources": sorted({row["source"] for row in rows}),
        "fp32_psnr": statistics.mean(row["fp32"] for row in rows),
        "bf16_psnr": statistics.mean(row["bf16"] for row in rows),
        "mean_difference": statistics.mean(differences),
        "largest_differences": sorted(rows, key=lambda row: -abs(row["bf16"] - row["fp32"]))[
            :WORST
        ],
        "rows": rows,
    }


def report(args: argparse.Namespace, results: dict) -> str:
    capabilities = results["cpu"]
    lines = [
        "## Mixed precision against fp32",
        "",
        f"Machine: {describe_machine()}.",
        "",
        "CPU capabilities: "
        + ", ".join(f"{key} {value}" for key, value in capabilities.items())
        + f"; `--precision auto` resolves to {results['auto']} here.",
        "",
        f"Command: `python benchmarks/precision.py --data path/to/cifar10 --photos "
        f"path/to/photos --epochs {args.epochs} --reference-epochs {args.reference_epochs}`",
    ]
    if "course" in results:
        course_results = results["course"]
        reference = course_results["reference_epoch_seconds"]
        lines += [
            "",
            f"The course UNet, `colorcnn train --data path/to/cifar10` ({args.epochs} epochs of "
            "5000 horses, batch 100, seed 0), as a whole command; the plain eager fp32 "
            f"epoch (training and validation pass) took {reference:.2f} s, the median of "
            f"{args.reference_epochs - 1} epochs before and as many after the two runs.",
            "",
            "| run | precision | whole command s | s / epoch | x reference per epoch "
            "| final val acc % | best val acc % | final PSNR dB |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, run in course_results["runs"].items():
            asked = "default (auto)" if name == "auto" else f"--precision {name}"
            lines.append(
                f"| {asked} | {run['precision']} | {run['wall_seconds']:.1f} | "
                f"{run['epoch_seconds']:.2f} | {reference / run['epoch_seconds']:.2f} | "
                f"{run['final_val_acc']:.2f} | {run['best_val_acc']:.2f} | "
                f"{run['final_psnr']:.2f} |"
            )
    if "photos" in results:
        photo_results = results["photos"]
        lines += [
            "",
            f"The shipped `photo` model on {photo_results['photos']} photos of the held-out "
            f"test sources ({', '.join(photo_results['sources'])}), made grey with their own "
            "Lab lightness and colourized at its working size: mean PSNR "
            f"{photo_results['fp32_psnr']:.3f} dB in fp32, {photo_results['bf16_psnr']:.3f} dB "
            f"in bf16 (difference {photo_results['mean_difference']:+.3f} dB). The photos on "
            "which the two differ most:",
            "",
            "| photo | fp32 dB | bf16 dB | difference |",
            "|---|---|---|---|",
        ]
        for row in photo_results["largest_differences"]:
            lines.append(
                f"| {row['photo']} | {row['fp32']:.2f} | {row['bf16']:.2f} | "
                f"{row['bf16'] - row['fp32']:+.2f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", help="the CIFAR-10 folder")
    parser.add_argument("--photos", help="the photo folder (with SOURCES.tsv)")
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--reference-epochs", type=int, default=3)
    parser.add_argument("--skip-course", action="store_true")
    parser.add_argument("--skip-photos", action="store_true")
    parser.add_argument("--results", default=str(REPO_ROOT / "docs" / "results.md"))
    args = parser.parse_args()
    results: dict = {
        "machine": describe_machine(),
        "cpu": cpu_capabilities(),
        "auto": resolve_precision("auto", torch.device("cpu")),
    }
    print(results, flush=True)
    if not args.skip_course:
        results["course"] = course(args)
    if not args.skip_photos:
        results["photos"] = photos(args)
        print({key: value for key, value in results["photos"].items() if key != "rows"})
    replace_section(Path(args.results), "precision", report(args, results))
    save_results("precision", results)


if __name__ == "__main__":
    main()

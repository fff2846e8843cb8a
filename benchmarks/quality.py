"""Colour quality of the formulations: palette-rgb (the course), ab-bins and ab-regression.

Usage:
    python benchmarks/quality.py --cifar PATH/TO/cifar10 --photos PATH/TO/photos

Trains each model with each target on two protocols, then scores the best checkpoint of
every run with `evaluate_checkpoint` (all metrics, true lightness) beside the grey and
mean-colour baselines:

- cifar: CIFAR-10 horses, the course's 5000 / 1000 split, 25 epochs, batch 100, seed 0;
- photos: random 64 px crops (scales and flips) of the training photos, scored on fixed
  views of held-out photos (chosen by a hash of each file name).

Finished runs are read back, interrupted ones continue. Results go into docs/results.md
and benchmarks/results/quality.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe_machine, replace_section, save_results  # noqa: E402

from colorcnn.data import DataSettings  # noqa: E402
from colorcnn.evaluation.evaluate import evaluate_checkpoint  # noqa: E402
from colorcnn.training import TrainConfig, fit  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
COLUMNS = [
    ("val_acc", "val acc %", "{:.1f}"),
    ("psnr", "PSNR dB", "{:.2f}"),
    ("psnr_raw", "PSNR raw dB", "{:.2f}"),
    ("ssim", "SSIM", "{:.4f}"),
    ("colourfulness", "colourfulness", "{:.1f}"),
    ("colourfulness_gap", "CF gap", "{:.1f}"),
    ("auc", "AuC", "{:.3f}"),
    ("auc_rebalanced", "AuC rebal.", "{:.3f}"),
]


def protocol_config(
    protocol: str, args: argparse.Namespace, model: str, target: str
) -> TrainConfig:
    out = str(Path(args.runs) / protocol / f"{model}-{target}")
    if protocol == "cifar":
        return TrainConfig(
            model=model, target=target, data=DataSettings(args.cifar), epochs=args.cifar_epochs,
            out=out, picture_every=5,
        )  # fmt: skip
    photos = DataSettings(args.photos, dataset="photos", crops_per_photo=args.crops_per_photo)
    return TrainConfig(
        model=model, target=target, data=photos, epochs=args.photo_epochs,
        batch_size=args.photo_batch_size, out=out, picture_every=5,
    )  # fmt: skip


def run_one(config: TrainConfig) -> tuple[dict, list[dict]]:
    resume = (Path(config.out) / "checkpoints" / "last.safetensors").is_file()
    history = fit(config, resume=resume, show_progress=False)
    scores = evaluate_checkpoint(config.out, prefer="best", baselines=False)
    scores.pop("checkpoint")  # a path of the machine that ran it
    return scores, history


def comparison_picture(protocol: str, run_dirs: list[Path], target: Path) -> None:
    """Grey input, truth, and every run's prediction (true lightness) on 8 validation images."""
    import torch

    from colorcnn import load_model
    from colorcnn.color.spaces import true_lightness, unit_rgb
    from colorcnn.data.datasets import load_course_data
    from colorcnn.training.pictures import save_prediction_grid

    data = load_course_data(load_model(run_dirs[0]).data_settings())
    truth = data.test_rgb[:8]
    rows = {"grey input": unit_rgb(truth).mean(dim=1, keepdim=True), "truth": unit_rgb(truth)}
    for run_dir in run_dirs:
        trained = load_model(run_dir)
        formulation = trained.formulation
        inputs = formulation.inputs(truth)
        with torch.inference_mode():
            predicted = formulation.predict_rgb(
                trained.network(inputs), inputs, true_lightness(truth)
            )
        rows[f"{trained.architecture}\n{formulation.name}"] = predicted
    save_prediction_grid(rows, target, f"{protocol}: predictions with the true lightness")


def table(rows: list[dict]) -> str:
    header = "| model | target | " + " | ".join(title for _, title, _ in COLUMNS) + " | s / epoch |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 3)]
    for row in rows:
        cells = [fmt.format(row[key]) if key in row else "-" for key, _, fmt in COLUMNS]
        seconds = f"{row['seconds_per_epoch']:.1f}" if "seconds_per_epoch" in row else "-"
        lines.append(
            f"| {row['model']} | {row['target']} | " + " | ".join(cells) + f" | {seconds} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cifar", help="CIFAR-10 folder (batches or image-folder tree)")
    parser.add_argument("--photos", help="folder of colour photographs")
    parser.add_argument("--protocols", default="cifar,photos")
    parser.add_argument("--models", default="unet,conv_transpose_net")
    parser.add_argument("--targets", default="palette-rgb,ab-bins,ab-regression")
    parser.add_argument("--cifar-epochs", type=int, default=25)
    parser.add_argument("--photo-epochs", type=int, default=10)
    parser.add_argument("--crops-per-photo", type=int, default=8)
    parser.add_argument("--photo-batch-size", type=int, default=32)
    parser.add_argument("--runs", default="runs/quality")
    parser.add_argument("--results", default=str(REPO_ROOT / "docs" / "results.md"))
    args = parser.parse_args()

    machine = describe_machine()
    payload: dict = {"machine": machine, "protocols": {}}
    sections = []
    for protocol in args.protocols.split(","):
        if getattr(args, protocol) is None:
            parser.error(f"protocol {protocol} needs --{protocol}")
        rows = []
        baselines = None
        for model in args.models.split(","):
            for target in args.targets.split(","):
                config = protocol_config(protocol, args, model, target)
                scores, history = run_one(config)
                scores["seconds_per_epoch"] = statistics.median(r["seconds"] for r in history)
                rows.append(scores)
                print(json.dumps({"protocol": protocol, **scores}), flush=True)
                if baselines is None:
                    baselines = evaluate_checkpoint(config.out, prefer="best")["baselines"]
        for name, scores in (baselines or {}).items():
            rows.append({"model": f"baseline: {name.replace('_', ' ')}", "target": "-", **scores})
        payload["protocols"][protocol] = rows
        sections.append((protocol, table(rows)))
        run_dirs = [
            Path(protocol_config(protocol, args, model, target).out)
            for model in args.models.split(",")
            for target in args.targets.split(",")
        ]
        picture = REPO_ROOT / "docs" / "images" / f"quality_{protocol}.png"
        comparison_picture(protocol, run_dirs, picture)

    save_results("quality", payload)
    titles = {
        "cifar": f"CIFAR-10 horses, 1000 test images, {args.cifar_epochs} epochs, batch 100",
        "photos": f"Photos: {args.crops_per_photo} random 64 px crops per training photo, "
        f"{args.photo_epochs} epochs, batch {args.photo_batch_size}; 3 fixed views of each "
        "held-out photo",
    }
    command = (
        "python benchmarks/quality.py --cifar path/to/cifar10 --photos path/to/photos "
        f"--cifar-epochs {args.cifar_epochs} --photo-epochs {args.photo_epochs} "
        f"--crops-per-photo {args.crops_per_photo} --models {args.models} "
        f"--targets {args.targets}"
    )
    body = [
        "## Colour quality: palette-rgb vs ab-bins vs ab-regression",
        "",
        f"Machine: {machine}.",
        "",
        f"Command: `{command}`",
        "",
        "Best checkpoint (lowest validation loss) of each run. PSNR, SSIM, colourfulness and "
        "AuC are computed on the prediction joined with the true Lab lightness; `PSNR raw` is "
        "the course's own palette picture (its grey is the mean of RGB, so its lightness is "
        "off). Colourfulness is Hasler and Suesstrunk's (0-255 scale); the gap is truth minus "
        "prediction. AuC is the area under the cumulative ab-error curve over thresholds "
        "0-150, plain and with every true ab bin weighted alike. `val acc` is the course's "
        "accuracy: the share of pixels whose colour, snapped to the 24-colour palette, is right.",
    ]
    for protocol, text in sections:
        body += [
            "",
            f"### {titles[protocol]}",
            "",
            text,
            "",
            f"![{protocol}](images/quality_{protocol}.png)",
        ]
    replace_section(Path(args.results), "colour-quality", "\n".join(body))


if __name__ == "__main__":
    main()

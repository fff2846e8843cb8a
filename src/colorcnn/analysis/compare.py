"""Compare training runs: a table of final and best metrics, overlaid curves, the runs'
prediction pictures side by side at chosen epochs, as Markdown and as an HTML page.

A run is a run folder, or anything `load_model` reads (a shipped name, a checkpoint, an
.onnx file): its description carries the settings and the history of its training."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path

import matplotlib.image as mpimg
from matplotlib.figure import Figure

from colorcnn.errors import ColorcnnError
from colorcnn.files import atomic_open
from colorcnn.trained import load_model
from colorcnn.training.pictures import epoch_axis, save_figure

# (key in metrics.jsonl, column title, format); val_acc and psnr are higher-is-better.
COLUMNS = (
    ("val_loss", "val loss", "{:.4f}"),
    ("val_acc", "val acc %", "{:.1f}"),
    ("psnr", "PSNR dB", "{:.2f}"),
    ("colourfulness", "colourfulness", "{:.1f}"),
    ("seconds", "s / epoch", "{:.1f}"),
)


@dataclass
class Run:
    folder: Path
    label: str
    config: dict
    history: list[dict]

    @property
    def best(self) -> dict:
        return min(self.history, key=lambda record: record["val_loss"])

    def picture(self, epoch: int) -> Path:
        return self.folder / "pictures" / f"epoch_{epoch:03d}.png"


def read_run(source: str | Path) -> Run:
    """A run folder's metrics and settings, or those a trained model's description holds."""
    folder = Path(source)
    metrics = folder / "metrics.jsonl"
    if not folder.is_dir():
        return _trained_run(source)
    if not metrics.is_file():
        raise ColorcnnError(
            f"{folder} is not a run folder; expected {metrics.name} in it (or a shipped "
            "model's name, a checkpoint or an .onnx file)"
        )
    try:
        history = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
        config = json.loads((folder / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ColorcnnError(f"{folder}: cannot read its metrics or config ({error})") from None
    if not history:
        raise ColorcnnError(f"{folder} has no finished epoch to compare")
    return Run(folder, folder.name, _flat_settings(config), history)


def _trained_run(source: str | Path) -> Run:
    info = load_model(source, fold=False).info
    history = info.get("history")
    if not history:
        raise ColorcnnError(f"{source} stores no training history to compare")
    # A checkpoint stops at the epoch it was saved at; its folder has no pictures.
    return Run(
        Path(source), Path(source).stem, _flat_settings(info.get("train_config", {})), history
    )


def _flat_settings(config: dict) -> dict:
    """Settings by name, the data settings among them: configurations that nest them
    (`{"data": {"category": ...}}`) and earlier, flat ones compare alike."""
    nested = config.get("data")
    if not isinstance(nested, dict):
        return dict(config)
    return {**{key: value for key, value in config.items() if key != "data"}, **nested}


def _differences(runs: list[Run]) -> list[str]:
    """The settings that differ between runs: what the comparison is about."""
    # The epochs a run has trained are their own column; the budget in config.json is not.
    keys = sorted({key for run in runs for key in run.config} - {"out", "epochs"})
    return [key for key in keys if len({json.dumps(run.config.get(key)) for run in runs}) > 1]


def _curves(runs: list[Run], path: Path) -> None:
    figure = Figure(figsize=(15, 4))
    axes = figure.subplots(1, 3)
    for run in runs:
        epochs = [record["epoch"] for record in run.history]
        (line,) = axes[0].plot(epochs, [r["val_loss"] for r in run.history], "o-", ms=3,
                               label=f"{run.label} (val)")  # fmt: skip
        axes[0].plot(epochs, [r["train_loss"] for r in run.history], "--",
                     color=line.get_color(), alpha=0.6)  # fmt: skip
        axes[1].plot(epochs, [r["val_acc"] for r in run.history], "o-", ms=3, label=run.label)
        axes[2].plot(epochs, [r.get("psnr", float("nan")) for r in run.history], "o-", ms=3,
                     label=run.label)  # fmt: skip
    titles = ("loss (solid: validation, dashed: train)", "validation accuracy (%)", "PSNR (dB)")
    for axis, title in zip(axes, titles, strict=True):
        axis.set_title(title, fontsize=10)
        epoch_axis(axis)
        axis.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    figure.tight_layout()
    save_figure(figure, path)


def _pictures(runs: list[Run], epochs: list[int], path: Path) -> list[str]:
    """One row per run, one column per epoch; returns what was missing."""
    missing = []
    figure = Figure(figsize=(6 * len(epochs), 3 * len(runs)))
    axes = figure.subplots(len(runs), len(epochs), squeeze=False)
    for row, run in enumerate(runs):
        for column, epoch in enumerate(epochs):
            axis = axes[row][column]
            axis.set_xticks([])
            axis.set_yticks([])
            picture = run.picture(epoch)
            if picture.is_file():
                axis.imshow(mpimg.imread(picture))
            else:
                axis.text(0.5, 0.5, "no picture", ha="center", va="center")
                missing.append(f"{run.label} epoch {epoch}")
            if row == 0:
                axis.set_title(f"epoch {epoch}", fontsize=10)
            if column == 0:
                axis.set_ylabel(run.label, fontsize=10)
    figure.tight_layout()
    save_figure(figure, path)
    return missing


def _setting(value) -> str:
    """A setting as a table cell: text as it is, nothing as "-", other values as JSON."""
    if value is None:
        return "-"
    return value if isinstance(value, str) else json.dumps(value)


def compare_runs(folders: list[str | Path], out_dir: Path, epochs: list[int] | None = None) -> Path:
    """Write report.md, report.html, curves.png and (with pictures) pictures.png; returns
    the HTML report's path."""
    if not folders:
        raise ColorcnnError("compare needs at least one run folder or trained model")
    runs = [read_run(folder) for folder in folders]
    labels = [run.label for run in runs]
    if len(set(labels)) != len(labels):  # same folder names in different places
        for index, run in enumerate(runs):
            run.label = f"{index + 1}: {run.folder}"
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ColorcnnError(f"cannot create {out_dir} ({error.strerror})") from None
    if epochs is None:
        last = min(run.history[-1]["epoch"] for run in runs)
        epochs = sorted({0, last})
    _curves(runs, out_dir / "curves.png")
    missing = _pictures(runs, epochs, out_dir / "pictures.png")

    differing = _differences(runs)
    header = ["run", *differing, "epochs trained"]
    for _, title, _ in COLUMNS:
        header += [f"final {title}", f"best {title}"]
    rows = []
    for run in runs:
        final, best = run.history[-1], run.best
        cells = [run.label, *[_setting(run.config.get(key)) for key in differing]]
        cells.append(str(len(run.history)))
        for key, _, fmt in COLUMNS:
            for record in (final, best):
                cells.append(fmt.format(record[key]) if key in record else "-")
        rows.append(cells)
    note = "Best = the epoch of the lowest validation loss."
    if missing:
        note += f" No picture for: {', '.join(missing)}."
    markdown = [
        f"# Comparison of {len(runs)} runs", "",
        "| " + " | ".join(header) + " |", "|" + "---|" * len(header),
        *["| " + " | ".join(cells) + " |" for cells in rows], "", note, "",
        "![curves](curves.png)", "", f"Pictures at epochs {', '.join(map(str, epochs))}:", "",
        "![pictures](pictures.png)", "",
    ]  # fmt: skip
    with atomic_open(out_dir / "report.md") as handle:
        handle.write("\n".join(markdown))
    table = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in cells) + "</tr>"
        for cells in rows
    )
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>colorcnn: comparison of {len(runs)} runs</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}img{{max-width:100%}}</style>
</head><body><h1>Comparison of {len(runs)} runs</h1>
<table><tr>{"".join(f"<th>{html.escape(h)}</th>" for h in header)}</tr>{table}</table>
<p>{html.escape(note)}</p><img src="curves.png" alt="curves">
<h2>Pictures at epochs {", ".join(map(str, epochs))}</h2>
<img src="pictures.png" alt="pictures"></body></html>
"""
    report = out_dir / "report.html"
    with atomic_open(report) as handle:
        handle.write(page)
    return report

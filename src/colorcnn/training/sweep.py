"""One setting, several values: the course's hyper-parameter questions as one command,
each value a run of its own, all of them side by side in a comparison report."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from colorcnn.errors import ColorcnnError, SettingError
from colorcnn.files import write_json
from colorcnn.training.config import TrainConfig
from colorcnn.training.loop import fit

# The settings the course asks about (TrainConfig's names), and how their values are read.
SWEEPABLE: dict[str, Callable[[str], int | float]] = {
    "epochs": int,
    "batch_size": int,
    "lr": float,
    "kernel": int,
    "num_filters": int,
}


def parse_values(setting: str, values: str) -> list[int | float]:
    """The numbers in `values` ("32,64,128") as `setting` reads them."""
    if setting not in SWEEPABLE:
        raise ColorcnnError(f"cannot sweep {setting!r}; expected one of {', '.join(SWEEPABLE)}")
    try:
        parsed = [SWEEPABLE[setting](part) for part in values.split(",") if part.strip()]
    except ValueError:
        raise SettingError(
            f"`values` for {setting} expects numbers separated by commas, got {values!r}"
        ) from None
    if not parsed or len(set(parsed)) != len(parsed):
        raise SettingError(f"`values` expects distinct numbers, got {values!r}")
    return parsed


def _finished_epochs(folder: Path) -> int:
    metrics = folder / "metrics.jsonl"
    if not metrics.is_file():
        return 0
    return len([line for line in metrics.read_text().splitlines() if line.strip()])


def run_sweep(
    base: TrainConfig,
    setting: str,
    values: list[int | float],
    out: Path,
    log: Callable[[str], None] = print,
    show_progress: bool = True,
    cache_dir: Path | None = None,
) -> list[Path]:
    """Train `base` once per value into out/<setting>=<value>; finished runs are kept,
    interrupted ones resumed. Returns the run folders in the order of `values`."""
    folders = []
    for value in values:
        folder = Path(out) / f"{setting}={value:g}"
        config = dataclasses.replace(base, **{setting: value}, out=str(folder))
        done = _finished_epochs(folder)
        if done >= config.epochs:
            log(f"{folder.name}: already trained ({done} epochs)")
        else:
            log(f"{folder.name}: training")
            fit(config, resume=done > 0, cache_dir=cache_dir, show_progress=show_progress, log=log)
        folders.append(folder)
    write_json(Path(out) / "sweep.json", {"setting": setting, "values": values,
                                          "base": base.to_dict()})  # fmt: skip
    return folders

"""Copy trained runs' best checkpoints into the package as shipped weights.

Usage:
    python tools/ship_weights.py NAME=RUN_DIR [NAME=RUN_DIR ...]

Keeps the weights and the description needed to use them (model, formulation, palette,
data settings, metrics), drops the optimizer state and replaces machine-specific paths:
the data folder becomes the official CIFAR-10 download (or the dataset's name) and the
run folder the model's name.
"""

from __future__ import annotations

import sys
from pathlib import Path

from colorcnn.training.checkpoint import build_model, load_checkpoint, save_checkpoint
from colorcnn.weights import WEIGHTS_DIR


def portable(info: dict, name: str) -> dict:
    info = {k: v for k, v in info.items() if k not in ("optimizer", "format")}
    data = dict(info["data"])
    data["data"] = None if data.get("dataset", "cifar10") == "cifar10" else data["dataset"]
    config = dict(info["train_config"])
    config.update(data=data["data"], out=name, palette_file=None)
    info.update(data=data, train_config=config, shipped_as=name)
    return info


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for pair in sys.argv[1:]:
        name, _, run = pair.partition("=")
        checkpoint = load_checkpoint(Path(run), prefer="best")
        model = build_model(checkpoint)
        save_checkpoint(WEIGHTS_DIR / name, model, portable(checkpoint.info, name))
        size = (WEIGHTS_DIR / f"{name}.safetensors").stat().st_size
        print(f"shipped {name}: {size / 1e3:.0f} kB from {run}")


if __name__ == "__main__":
    main()

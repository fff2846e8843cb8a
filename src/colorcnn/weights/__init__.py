"""Weights that ship inside the package, so that evaluation and colourizing work offline.

Each model is `<name>.safetensors` (weights, with its description in the header) and
`<name>.json` (the same description, readable). `tools/ship_weights.py` makes them from
training runs and strips everything that only made sense on the training machine.
"""

from __future__ import annotations

import json
from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent


def shipped_models() -> dict[str, Path]:
    """Names of the shipped models and their tensor files."""
    return {path.stem: path for path in sorted(WEIGHTS_DIR.glob("*.safetensors"))}


def shipped_path(name: str) -> Path | None:
    return shipped_models().get(name)


def describe_shipped(name: str) -> dict:
    return json.loads((WEIGHTS_DIR / f"{name}.json").read_text())

"""What every benchmark shares: a one-line description of the machine it ran on, and
writing its results (a section of docs/results.md, a JSON file in benchmarks/results/)."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import torch

from colorcnn.files import atomic_open


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def describe_machine() -> str:
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        kib = int(meminfo.read_text().split()[1])
        memory = f", {kib / 2**20:.0f} GiB RAM"
    return (
        f"{cpu_model()}, {os.cpu_count()} cores{memory}, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads)"
    )


def replace_section(document: Path, marker: str, body: str) -> None:
    """Replace the text between `<!-- marker:start -->` and `<!-- marker:end -->`, or append it."""
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    text = document.read_text() if document.is_file() else "# Results\n"
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text and end in text:
        before = text.split(start, 1)[0]
        after = text.split(end, 1)[1]
        text = before + block + after
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    with atomic_open(document) as handle:
        handle.write(text)


RESULTS_DIR = Path(__file__).resolve().parent / "results"


def save_results(name: str, payload: dict, target: Path | None = None) -> Path:
    """Write benchmarks/results/<name>.json (or `target`) whole, through a temporary file."""
    if target is None:
        RESULTS_DIR.mkdir(exist_ok=True)
        target = RESULTS_DIR / f"{name}.json"
    with atomic_open(target) as handle:
        handle.write(json.dumps(payload, indent=2) + "\n")
    return target

"""What `--precision auto` avoids: bf16 where the CPU only emulates it.

Usage:
    python benchmarks/emulated_bf16.py

Times colorcnn's training step of the course UNet (32 px, batch 100) in fp32 and in bf16,
taking turns, in two fresh processes: one on this CPU as it is, and one with oneDNN and
ATen held to AVX2 (`ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2`), as on a CPU without
bf16 instructions, where bf16 values are converted to fp32 and back around every kernel.
Each prints what `auto` resolves to there. Results go into docs/results.md (section
"emulated-bf16") and benchmarks/results/emulated_bf16.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe_machine, replace_section, save_results  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
STEPS = 5  # timed steps per precision, after one warm-up each
CAP = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}

_WORKER = """
import json, statistics, time
import torch
from colorcnn.color import fit_palette
from colorcnn.formulations import build_formulation
from colorcnn.models import create_model
from colorcnn.runtime import fast_layout, native_bf16, resolve_precision, set_determinism
from colorcnn.training.loop import train_one_epoch

steps = int(__import__("sys").argv[1])
set_determinism(True)
torch.manual_seed(0)
rgb = torch.rand(100, 3, 32, 32) * 255 / 256
palette = fit_palette(rgb[:50], 24, seed=0)
formulation = build_formulation("palette-rgb", palette, train_rgb=rgb[:50])
inputs, targets = fast_layout(formulation.inputs(rgb)), formulation.training_targets(rgb)
models = {name: fast_layout(create_model("unet")) for name in ("fp32", "bf16")}
optimizers = {name: torch.optim.Adam(model.parameters(), 1e-3, fused=True)
              for name, model in models.items()}
seconds = {name: [] for name in models}
for turn in range(1 + steps):
    for name in ("fp32", "bf16") if turn % 2 == 0 else ("bf16", "fp32"):
        started = time.perf_counter()
        train_one_epoch(models[name], optimizers[name], inputs, targets, formulation, 100,
                        precision=name)
        if turn:
            seconds[name].append(time.perf_counter() - started)
print(json.dumps({
    "kernels": torch.backends.cpu.get_cpu_capability(), "native_bf16": native_bf16(),
    "auto": resolve_precision("auto", torch.device("cpu")),
    **{f"{name}_images_per_s": 100 / statistics.median(times) for name, times in seconds.items()},
}))
"""


def measure(capped: bool) -> dict:
    environment = {**os.environ, **(CAP if capped else {})}
    done = subprocess.run([sys.executable, "-c", _WORKER, str(STEPS)], env=environment,
                          check=True, capture_output=True, text=True)  # fmt: skip
    return {"capped": capped, **json.loads(done.stdout.strip().splitlines()[-1])}


def main() -> None:
    rows = [measure(capped=False), measure(capped=True)]
    for row in rows:
        print(json.dumps(row), flush=True)
    lines = [
        "## bf16 where it is only emulated",
        "",
        f"Machine: {describe_machine()}.",
        "",
        "Command: `python benchmarks/emulated_bf16.py`",
        "",
        "colorcnn's training step of the course UNet (32 px, batch 100), fp32 and bf16 taking "
        f"turns, median of {STEPS} steps each, in a fresh process per row. The capped row "
        "holds oneDNN and ATen to AVX2 (`ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2`), "
        "as on a CPU without bf16 instructions.",
        "",
        "| CPU as | kernels | native bf16 | auto resolves to | fp32 img/s | bf16 img/s "
        "| bf16 / fp32 |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        label = "capped to AVX2" if row["capped"] else "it is"
        lines.append(
            f"| {label} | {row['kernels']} | {row['native_bf16']} | {row['auto']} | "
            f"{row['fp32_images_per_s']:.0f} | {row['bf16_images_per_s']:.0f} | "
            f"{row['bf16_images_per_s'] / row['fp32_images_per_s']:.2f} |"
        )
    replace_section(REPO_ROOT / "docs" / "results.md", "emulated-bf16", "\n".join(lines))
    save_results("emulated_bf16", {"machine": describe_machine(), "rows": rows})


if __name__ == "__main__":
    main()

"""End-to-end colourizing speed and peak memory on photos of 1 and 12 megapixels.

Usage:
    python benchmarks/colorize_speed.py [--model photo[,photo-unet]] [--photo PATH]
        [--repeats 3]

Each size runs in a fresh Python process, as the command line does: load the model, then
read a grey JPEG, colourize it at the default working size and write a JPEG (quality 95),
all through `Colorizer.colorize` and `save_image`. The first image of the process is timed
on its own ("cold": first-call allocations included), then the median of `--repeats` more
("warm"). Peak memory is the process's maximum resident set, beside the resident set right
after loading the model. The test photo is a held-out photo resized up to each size, or a
smooth random picture when no photo is given. Several models (by commas) are timed in turn,
size by size, in the same run. Results go into docs/results.md and
benchmarks/results/colorize_speed.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe_machine, replace_section, save_results  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
SIZES = {"1 MP": (1155, 866), "12 MP": (4000, 3000)}

_WORKER = """
import json, resource, statistics, sys, time
from pathlib import Path
import torch
from colorcnn.inference import Colorizer
from colorcnn.inference.images import save_image

source, target, model, repeats = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
colorizer = Colorizer.load(model)
after_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
times = []
for _ in range(1 + repeats):
    started = time.perf_counter()
    save_image(colorizer.colorize(source), target)
    times.append(time.perf_counter() - started)
print(json.dumps({
    "cold_s": times[0], "warm_s": statistics.median(times[1:]),
    "rss_after_load_mb": after_load,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "threads": torch.get_num_threads(),
}))
"""


def make_test_photo(photo: Path | None, size: tuple[int, int], target: Path) -> None:
    import numpy as np
    from PIL import Image

    if photo is not None:
        image = Image.open(photo).convert("L")
    else:  # smooth random structure, so JPEG sizes resemble a photo's
        noise = np.random.RandomState(0).rand(48, 64) * 255
        image = Image.fromarray(noise.astype(np.uint8))
    image.resize(size, Image.Resampling.BICUBIC).save(target, quality=90)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="photo", help="shipped names or runs, by commas")
    parser.add_argument("--photo", type=Path, default=None, help="a photo to resize up")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--results", default=str(REPO_ROOT / "docs" / "results.md"))
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, size in SIZES.items():
            source = Path(tmp) / f"{label.replace(' ', '')}.jpg"
            make_test_photo(args.photo, size, source)
            for model in args.model.split(","):
                command = [sys.executable, "-c", _WORKER, str(source),
                           str(Path(tmp) / "out.jpg"), model, str(args.repeats)]  # fmt: skip
                finished = subprocess.run(command, check=True, capture_output=True, text=True)
                result = json.loads(finished.stdout.strip().splitlines()[-1])
                row = {"model": model, "image": label, "width": size[0], "height": size[1]}
                rows.append({**row, **result})
                print(json.dumps(rows[-1]), flush=True)

    lines = [
        "## Colourizing speed and memory, end to end",
        "",
        f"Machine: {describe_machine()}.",
        "",
        f"Command: `python benchmarks/colorize_speed.py --model {args.model}"
        + (" --photo path/to/photo" if args.photo else "")
        + f" --repeats {args.repeats}`",
        "",
        "Grey JPEG in, colour JPEG out, PyTorch backend, default working size; a fresh process "
        "per size. Cold: the first image after loading the model. Warm: median of "
        f"{args.repeats} more.",
        "",
        "The targets: 1 MP in at most 0.3 s, 12 MP in at most 2.5 s, and at most 1.5 GB of "
        "memory for 12 MP. Peak RSS counts the whole process, PyTorch and the model included.",
        "",
        "| model | image | cold s | warm s | RSS after loading MB | peak RSS MB | threads |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['model']} | {row['image']} ({row['width']}x{row['height']}) | "
            f"{row['cold_s']:.3f} | "
            f"{row['warm_s']:.3f} | {row['rss_after_load_mb']:.0f} | {row['peak_rss_mb']:.0f} | "
            f"{row['threads']} |"
        )
    replace_section(Path(args.results), "colorize-speed", "\n".join(lines))
    save_results(
        "colorize_speed", {"machine": describe_machine(), "model": args.model, "rows": rows}
    )


if __name__ == "__main__":
    main()

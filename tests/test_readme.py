"""The README's Python API example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

README = Path(__file__).resolve().parent.parent / "README.md"


def _python_blocks(section: str) -> list[str]:
    text = README.read_text(encoding="utf-8")
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", body, flags=re.DOTALL)


@pytest.mark.slow
def test_the_python_api_example_runs(tmp_path: Path, monkeypatch, capsys) -> None:
    example = _python_blocks("Python API")[0]
    assert "colorcnn.load_model(" in example
    rows = np.linspace(0, 255, 48, dtype=np.uint8)[:, None].repeat(64, axis=1)
    for name in ("scan.jpg", "a.jpg", "b.png"):  # the grey pictures the example reads
        Image.fromarray(rows).save(tmp_path / name)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(example, str(README), "exec"), namespace)  # noqa: S102
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "efficient_unet (ab-regression, torch)"
    assert printed[1] == "96 160"
    assert float(printed[2]) == pytest.approx(
        namespace["model"].info["heldout_photos"]["vs_grey_median"]
    )
    colour = Image.open(tmp_path / "scan_colour.jpg")
    assert colour.size == (64, 48) and colour.mode == "RGB"
    assert [picture.size for picture in namespace["pictures"]] == [(64, 48), (64, 48)]

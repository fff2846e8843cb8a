"""Colour hints from the user: files, short texts, sidecars, and colourizing with them."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import save_hinted_run

import colorcnn
from colorcnn.color.hints import HINT_CHANNELS, Hint
from colorcnn.errors import ColorcnnError
from colorcnn.inference import Colorizer
from colorcnn.inference.hints import (
    parse_hint_text,
    read_hints_file,
    sidecar_path,
    write_hints_file,
)
from colorcnn.models import create_model

PALETTE = torch.linspace(0, 0.99, 18).reshape(6, 3)
# The module, not the function `colorcnn.inference.colorize` that shadows it as an attribute.
colorize_module = importlib.import_module("colorcnn.inference.colorize")


def test_a_hints_file_reads_and_writes_back(tmp_path: Path) -> None:
    path = tmp_path / "hints.json"
    path.write_text('[{"x": 120, "y": 45, "color": "#c03020"}, {"x": 3, "y": 4.5, '
                    '"color": "0a0b0c", "size": 8}]')  # fmt: skip
    hints = read_hints_file(path)
    assert hints == [Hint(120, 45, (192, 48, 32)), Hint(3, 4.5, (10, 11, 12), 8)]
    write_hints_file(tmp_path / "again.json", hints)
    assert read_hints_file(tmp_path / "again.json") == hints


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[{"x": 1, "y": 2, "color": "#c03020"', "is not valid JSON (line 1, column"),
        ('{"x": 1, "y": 2, "color": "#c03020"}', "holds a dict; expected a list of hints"),
        ('[{"x": 1, "color": "#c03020"}]', "hint 1 is {"),
        ('[{"x": 1, "y": 2, "color": "red"}]', "hint 1: colour 'red' is not a hex colour"),
        ('[{"x": "1", "y": 2, "color": "#c03020"}]', "hint 1: x must be a number, got '1'"),
        ('[{"x": 1, "y": 2, "color": "#c03020", "radius": 3}]', "unknown keys ['radius']"),
        ('[{"x": 1, "y": 2, "color": "#c03020", "size": -1}]', "hint size must be a positive"),
    ],
)
def test_a_bad_hints_file_is_one_line_that_says_what_was_expected(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "hints.json"
    path.write_text(text)
    with pytest.raises(ColorcnnError, match=None) as caught:
        read_hints_file(path)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(ColorcnnError, match="does not exist"):
        read_hints_file(tmp_path / "missing.json")


def test_short_hint_texts_and_sidecars() -> None:
    assert parse_hint_text("120,45,#c03020") == Hint(120, 45, "#c03020")
    assert parse_hint_text(" 1.5, 2 ,#fff, 6") == Hint(1.5, 2, "#ffffff", 6)
    for bad, message in (("120,45", "is not x,y,#colour"), ("a,45,#c03020", "not a number"),
                         ("1,2,#zzzzzz", "is not a hex colour")):  # fmt: skip
        with pytest.raises(ColorcnnError, match=message):
            parse_hint_text(bad)
    assert sidecar_path("scans/old photo.jpg") == Path("scans/old photo.hints.json")


@pytest.fixture(scope="module")
def hinted_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small CNN that takes hints (untrained: hints only have to reach it)."""
    torch.manual_seed(0)
    args = {"num_filters": 8, "in_channels": 1 + HINT_CHANNELS, "out_channels": 2}
    return save_hinted_run(
        tmp_path_factory.mktemp("hinted"), create_model("cnn", **args), args, PALETTE
    )


def _grey_picture() -> np.ndarray:
    rows = np.linspace(30, 220, 48, dtype=np.uint8)[:, None].repeat(80, axis=1)
    return rows


def test_hints_change_the_colour_and_never_the_lightness(hinted_run: Path, monkeypatch) -> None:
    colorizer = Colorizer.load(hinted_run)
    assert colorizer.takes_hints
    joined = []
    real = colorize_module.lab_to_rgb_uint8

    def recording(lightness, ab):
        joined.append(torch.cat((lightness[None], ab))[None].clone())
        return real(lightness, ab)

    monkeypatch.setattr(colorize_module, "lab_to_rgb_uint8", recording)
    picture = _grey_picture()
    plain = np.asarray(colorizer.colorize(picture))
    hinted = np.asarray(colorizer.colorize(picture, hints=[Hint(40, 24, "#20c040", size=20)]))
    assert plain.shape == hinted.shape == (48, 80, 3)
    without, with_hints = joined
    assert torch.equal(without[:, :1], with_hints[:, :1])  # the very same lightness
    assert not torch.equal(without[:, 1:], with_hints[:, 1:])  # and another chroma
    assert np.abs(plain.astype(int) - hinted.astype(int)).max() > 0


def test_bad_hints_for_the_image_or_the_model_are_refused(hinted_run: Path) -> None:
    colorizer = Colorizer.load(hinted_run)
    with pytest.raises(ColorcnnError, match=r"hint at \(80, 3\) is outside the 80x48 px image"):
        colorizer.colorize(_grey_picture(), hints=[Hint(80, 3, "#ffffff")])
    with pytest.raises(ColorcnnError, match="was trained without colour hints"):
        colorcnn.colorize(_grey_picture(), "cifar-horse-unet", hints=[Hint(1, 1, "#ffffff")])


def _write_grey(path: Path) -> Path:
    from PIL import Image

    Image.fromarray(_grey_picture()).save(path)
    return path


def test_colorize_takes_hint_points_a_file_and_sidecars(hinted_run: Path, tmp_path, capsys):
    from colorcnn.cli import main

    photo = _write_grey(tmp_path / "photo.png")
    out = tmp_path / "out.png"
    assert main(["colorize", str(photo), "-m", str(hinted_run), "--hint", "10,5,#c03020",
                 "--hint", "60,40,#2040c0,8", "-o", str(out), "--no-progress"]) == 0  # fmt: skip
    assert out.is_file() and "1 with colour hints" in capsys.readouterr().out
    hints = tmp_path / "hints.json"
    hints.write_text('[{"x": 10, "y": 5, "color": "#c03020"}]')
    assert main(["colorize", str(photo), "-m", str(hinted_run), "--hints", str(hints),
                 "-o", str(out), "--overwrite", "--no-progress"]) == 0  # fmt: skip
    folder = tmp_path / "scans"
    folder.mkdir()
    _write_grey(folder / "a.png")
    _write_grey(folder / "b.png")
    (folder / "a.hints.json").write_text('[{"x": 3, "y": 4, "color": "#30c020"}]')
    capsys.readouterr()
    assert main(["colorize", str(folder), "-m", str(hinted_run), "-o", str(tmp_path / "o"),
                 "--no-progress"]) == 0  # fmt: skip
    assert "Colourized 2 of 2 image(s)" in (line := capsys.readouterr().out)
    assert "1 with colour hints" in line


@pytest.mark.parametrize(
    ("hint_args", "message"),
    [
        (["--hint", "80,5,#c03020"], "hint at (80, 5) is outside the 80x48 px image"),
        (["--hint", "10,5,#c0302"], "colour '#c0302' is not a hex colour"),
        (["--hints", "{bad json"], "is not valid JSON"),
        (["--hints", "two inputs"], "--hints and --hint give points in one image's pixels"),
    ],
)
def test_bad_hints_are_one_line_exit_1_and_nothing_written(
    hinted_run: Path, tmp_path, capsys, hint_args: list[str], message: str
) -> None:
    from colorcnn.cli import main

    photo = _write_grey(tmp_path / "photo.png")
    inputs = [str(photo)]
    if hint_args[0] == "--hints":
        hints = tmp_path / "hints.json"
        if hint_args[1] == "two inputs":
            hints.write_text('[{"x": 1, "y": 1, "color": "#c03020"}]')
            inputs.append(str(_write_grey(tmp_path / "second.png")))
        else:
            hints.write_text(hint_args[1])
        hint_args = ["--hints", str(hints)]
    out = tmp_path / "out"
    assert main(["colorize", *inputs, "-m", str(hinted_run), *hint_args, "-o", str(out)]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error, error
    assert not out.exists()


def test_a_model_without_hints_refuses_them_before_writing(tmp_path, capsys) -> None:
    from colorcnn.cli import main

    photo = _write_grey(tmp_path / "photo.png")
    out = tmp_path / "out.png"
    assert main(["colorize", str(photo), "-m", "cifar-horse-unet", "--hint", "1,1,#ffffff",
                 "-o", str(out)]) == 1  # fmt: skip
    assert "was trained without colour hints" in capsys.readouterr().err
    assert not out.exists()

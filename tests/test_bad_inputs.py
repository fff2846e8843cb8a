"""The bad-input corpus: every kind of broken file, odd image, bad setting and command-line
mistake, made by the tests themselves. Each case gets one clear line naming what was wrong
and what was expected, the right exit status, the other inputs still processed, and no
partial output. docs/reliability.md lists the same cases as a table."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from colorcnn.cli import main

REPO_ROOT = Path(__file__).resolve().parent.parent


def _photo(size=(40, 30), mode="L") -> Image.Image:
    ys, xs = np.mgrid[0 : size[1], 0 : size[0]]
    return Image.fromarray(((xs * 5 + ys * 3) % 256).astype(np.uint8)).convert(mode)


def _jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    _photo((64, 48)).save(buffer, "JPEG")
    return buffer.getvalue()


def _png_bytes() -> bytes:
    """A noisy PNG (tens of kB), so that cutting it really truncates the pixel data."""
    buffer = io.BytesIO()
    noise = np.random.RandomState(0).randint(0, 256, (96, 128), np.uint8)
    Image.fromarray(noise).save(buffer, "PNG")
    return buffer.getvalue()


@dataclass
class FileCase:
    kind: str
    make: Callable[[Path], Path]  # writes the input into the folder, returns its path
    fails: bool  # True: reported and skipped; False: colourized
    message: str = ""  # what the one line says
    size: tuple[int, int] | None = None  # expected output size when it works


def _write(name: str, data: bytes) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(data)
        return path

    return make


def _save(name: str, image_maker, **options) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        image_maker().save(path, **options)
        return path

    return make


def _animated(folder: Path) -> Path:
    frames = [_photo(mode="P"), _photo((40, 30), "P").rotate(90)]
    path = folder / "animated.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return path


def _multipage(folder: Path) -> Path:
    path = folder / "pages.tif"
    _photo().save(path, save_all=True, append_images=[_photo((20, 20))])
    return path


def _sixteen_bit(folder: Path) -> Path:
    path = folder / "deep.png"
    Image.fromarray((np.arange(1200).reshape(30, 40) * 50).astype(np.uint16)).save(path)
    return path


def _palette_alpha(folder: Path) -> Path:
    image = _photo(mode="RGB").convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    image.info["transparency"] = 0
    path = folder / "palette.png"
    image.save(path, transparency=0)
    return path


def _exif_rotated(folder: Path) -> Path:
    image = _photo((40, 30), "RGB")
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    path = folder / "rotated.jpg"
    image.save(path, exif=exif)
    return path


def _directory(folder: Path) -> Path:
    path = folder / "folder.png"
    path.mkdir()
    (path / "notes.txt").write_text("not an image")
    return path


def _symlink_loop(folder: Path) -> Path:
    path = folder / "loop.png"
    path.symlink_to(path)
    return path


def _unreadable(folder: Path) -> Path:
    path = folder / "secret.png"
    _photo().save(path)
    path.chmod(0)
    return path


def _bomb(folder: Path) -> Path:
    path = folder / "bomb.png"
    Image.new("1", (12000, 12000)).save(path)  # 144 Mpx: past the limit the test sets
    return path


FILE_CASES = [
    FileCase("zero-byte file", _write("empty.png", b""), True, "could not be read as an image"),
    FileCase("truncated JPEG", _write("cut.jpg", _jpeg_bytes()[:300]), True,
             "could not be read as an image"),
    FileCase("truncated PNG", _write("cut.png", _png_bytes()[:4000]), True,
             "could not be read as an image"),
    FileCase("text file with an image extension", _write("notes.jpg", b"hello, world\n" * 20),
             True, "could not be read as an image"),
    FileCase("symlink loop", _symlink_loop, True, "loop.png"),
    FileCase("no read permission", _unreadable, True, "permission denied"),
    FileCase("decompression bomb", _bomb, True, "too large to decode safely"),
    FileCase("1x1 px", _save("dot.png", lambda: _photo((1, 1))), False, size=(1, 1)),
    FileCase("100000x1 px", _save("strip.png", lambda: _photo((100000, 1))), False,
             size=(100000, 1)),
    FileCase("animated GIF (first frame)", _animated, False, size=(40, 30)),
    FileCase("multi-page TIFF (first page)", _multipage, False, size=(40, 30)),
    FileCase("16-bit grey PNG", _sixteen_bit, False, size=(40, 30)),
    FileCase("CMYK JPEG", _save("print.jpg", lambda: _photo(mode="CMYK")), False,
             size=(40, 30)),
    FileCase("palette with transparency", _palette_alpha, False, size=(40, 30)),
    FileCase("EXIF-rotated JPEG", _exif_rotated, False, size=(30, 40)),
    FileCase("non-ASCII file name", _save("фото_写真.png", _photo), False, size=(40, 30)),
]  # fmt: skip


@pytest.mark.parametrize("case", FILE_CASES, ids=[case.kind for case in FILE_CASES])
def test_each_bad_file_is_one_line_and_the_rest_go_on(
    case: FileCase, tmp_path: Path, capsys, monkeypatch
) -> None:
    if case.kind == "no read permission" and os.geteuid() == 0:
        pytest.skip("root reads every file; the permission case needs an ordinary user")
    if case.kind == "decompression bomb":
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 60_000_000)  # bombs start at twice this
    inputs = tmp_path / "in"
    inputs.mkdir()
    good = inputs / "good.png"
    _photo().save(good)
    bad = case.make(inputs)
    out = tmp_path / "out"
    status = main(["colorize", str(good), str(bad), "-m", "cifar-horse-unet", "-o", str(out),
                   "--size", "32", "--no-progress"])  # fmt: skip
    captured = capsys.readouterr()
    written = sorted(path.name for path in out.iterdir())
    assert "good.png" in written  # the other input was still processed
    assert not [name for name in written if name.startswith(".") or ".tmp" in name]
    if case.fails:
        assert status == 1
        lines = [line for line in captured.err.splitlines() if line.startswith("failed")]
        assert len(lines) == 1 and case.message in lines[0] and bad.name in lines[0]
        assert "Traceback" not in captured.err
        assert written == ["good.png"]  # nothing half-written for the bad file
    else:
        assert status == 0, captured.err
        (result,) = [out / name for name in written if name != "good.png"]
        assert Image.open(result).size == case.size


@dataclass
class CommandCase:
    kind: str
    args: Callable[[Path, Path], list[str]]  # (tmp folder, tiny CIFAR) -> arguments
    status: int
    message: str


def _photos_with_a_broken_file(tmp: Path) -> Path:
    folder = tmp / "photos"
    folder.mkdir()
    for index in range(5):
        _photo((80, 60), "RGB").save(folder / f"p{index}.png")
    (folder / "broken.png").write_bytes(_png_bytes()[:4000])
    return folder


def _empty_folder(tmp: Path) -> Path:
    (tmp / "empty").mkdir()
    return tmp / "empty"


def _bad_palette(tmp: Path) -> Path:
    np.save(tmp / "palette.npy", np.zeros((5, 4)))
    return tmp / "palette.npy"


def _other_architecture(tmp: Path) -> Path:
    from safetensors.torch import load_file, save_file

    from colorcnn.weights import shipped_path

    tensors = load_file(shipped_path("cifar-horse-cnn"))
    header = shipped_path("cifar-horse-unet")
    from safetensors import safe_open

    with safe_open(header, "pt") as handle:
        metadata = handle.metadata()
    save_file(tensors, tmp / "mixed.safetensors", metadata=metadata)
    return tmp / "mixed.safetensors"


def _pickle(tmp: Path) -> Path:
    (tmp / "model.safetensors").write_bytes(b"\x80\x04\x95" + b"\x00" * 64)
    return tmp / "model.safetensors"


def _grey(tmp: Path) -> Path:
    _photo().save(tmp / "grey.png")
    return tmp / "grey.png"


COMMAND_CASES = [
    CommandCase("photo folder with a broken file among good ones",
                lambda t, c: ["train", "--dataset", "photos", "--data",
                              str(_photos_with_a_broken_file(t)), "--out", str(t / "run")],
                1, "broken.png could not be read"),
    CommandCase("empty dataset folder",
                lambda t, c: ["train", "--dataset", "photos", "--data", str(_empty_folder(t)),
                              "--out", str(t / "run")], 1, "expected at least 2"),
    CommandCase("palette file of the wrong shape",
                lambda t, c: ["train", "--data", str(c), "--category", "all", "--palette",
                              str(_bad_palette(t)), "--out", str(t / "run")], 1,
                "has shape (5, 4); expected (num_colours >= 2, 3)"),
    CommandCase("checkpoint of another architecture",
                lambda t, c: ["colorize", str(_grey(t)), "-m", str(_other_architecture(t)),
                              "-o", str(t / "out")], 1, "do not fit model"),
    CommandCase("a pickle named .safetensors",
                lambda t, c: ["colorize", str(_grey(t)), "-m", str(_pickle(t)),
                              "-o", str(t / "out")], 1, "model.safetensors"),
    CommandCase("output folder that is a file",
                lambda t, c: ["colorize", str(_grey(t)), "-o", str(_grey(t))], 1, "grey.png"),
    CommandCase("negative batch size",
                lambda t, c: ["train", "--batch-size", "-5", "--out", str(t / "r")], 2,
                "--batch-size"),
    CommandCase("zero batch size",
                lambda t, c: ["train", "--batch-size", "0", "--out", str(t / "r")], 2,
                "--batch-size"),
    CommandCase("zero epochs",
                lambda t, c: ["train", "--epochs", "0", "--out", str(t / "r")], 2, "--epochs"),
    CommandCase("negative epochs",
                lambda t, c: ["train", "--epochs", "-3", "--out", str(t / "r")], 2, "--epochs"),
    CommandCase("unknown model name",
                lambda t, c: ["train", "--model", "resnet", "--out", str(t / "r")], 1,
                "unknown model 'resnet'"),
    CommandCase("unknown target name",
                lambda t, c: ["train", "--target", "lab", "--out", str(t / "r")], 1,
                "unknown target 'lab'"),
    CommandCase("unknown category",
                lambda t, c: ["train", "--category", "unicorn", "--data", str(c),
                              "--out", str(t / "r")], 1, "unknown category 'unicorn'"),
    CommandCase("unknown shipped model or missing checkpoint",
                lambda t, c: ["colorize", str(_grey(t)), "-m", "no-such-model",
                              "-o", str(t / "out")], 1, "no-such-model"),
]  # fmt: skip


@pytest.mark.parametrize("case", COMMAND_CASES, ids=[case.kind for case in COMMAND_CASES])
def test_each_bad_setting_is_one_line_with_the_right_status(
    case: CommandCase, tmp_path: Path, tiny_cifar: Path, capsys
) -> None:
    status = main(case.args(tmp_path, tiny_cifar))
    error = capsys.readouterr().err.strip()
    assert status == case.status
    assert case.message in error
    assert "Traceback" not in error
    if status == 1:  # our own errors: exactly one line
        assert len(error.splitlines()) == 1, error


def test_the_corpus_is_large_and_documented() -> None:
    kinds = [case.kind for case in FILE_CASES] + [case.kind for case in COMMAND_CASES]
    assert len(kinds) >= 30
    document = (REPO_ROOT / "docs" / "reliability.md").read_text()
    missing = [kind for kind in kinds if f"| {kind} |" not in document]
    assert not missing, f"docs/reliability.md lacks {missing}"

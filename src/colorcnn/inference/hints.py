"""Colour hints from the user: a JSON file (a list of {"x": 120, "y": 45, "color": "#c03020"},
optionally with a "size" in pixels), a short "x,y,#colour" text for a few points, and the
sidecar file NAME.hints.json that goes with an image when many are colourized at once.

x and y are in the input image's own pixels, origin top-left, x to the right. Only a hint
colour's chroma is used: the lightness always comes from the photo.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from PIL import Image

from colorcnn.color.hints import Hint
from colorcnn.errors import ColorcnnError, SettingError
from colorcnn.files import write_json

SIDECAR_SUFFIX = ".hints.json"
_EXAMPLE = '[{"x": 120, "y": 45, "color": "#c03020"}]'


def _number(value: object, what: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ColorcnnError(f"{where}: {what} must be a number, got {value!r}")
    return float(value)


def hints_from_json(payload: object, where: str = "hints") -> list[Hint]:
    """Hints from parsed JSON: a list of objects with x, y, color (hex) and optional size."""
    if not isinstance(payload, list):
        raise ColorcnnError(
            f"{where} holds a {type(payload).__name__}; expected a list of hints like {_EXAMPLE}"
        )
    hints = []
    for index, entry in enumerate(payload):
        place = f"{where}, hint {index + 1}"
        if not isinstance(entry, dict) or not {"x", "y", "color"} <= set(entry):
            raise ColorcnnError(
                f"{place} is {json.dumps(entry)[:60]}; expected an object with x, y and color "
                f"like {_EXAMPLE[1:-1]}"
            )
        unknown = sorted(set(entry) - {"x", "y", "color", "size"})
        if unknown:
            raise ColorcnnError(f"{place} has unknown keys {unknown}; expected x, y, color, size")
        size = entry.get("size")
        try:
            hints.append(
                Hint(
                    _number(entry["x"], "x", place),
                    _number(entry["y"], "y", place),
                    str(entry["color"]),
                    None if size is None else _number(size, "size", place),
                )
            )
        except ColorcnnError as error:
            raise ColorcnnError(f"{place}: {error}") from None
    return hints


def read_hints_file(path: str | Path) -> list[Hint]:
    """The hints of a JSON file, or one line that says what is wrong with it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ColorcnnError(f"hints file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ColorcnnError(f"hints file {path} cannot be read ({error})") from None
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as error:
        raise ColorcnnError(
            f"hints file {path} is not valid JSON (line {error.lineno}, column {error.colno}: "
            f"{error.msg}); expected a list like {_EXAMPLE}"
        ) from None
    return hints_from_json(payload, str(path))


def parse_hint_text(text: str) -> Hint:
    """ "120,45,#c03020" or "120,45,#c03020,8" (x, y, colour, optional size)."""
    parts = [part.strip() for part in str(text).split(",")]
    if len(parts) not in (3, 4):
        raise ColorcnnError(f"hint {text!r} is not x,y,#colour; expected e.g. 120,45,#c03020")
    try:
        numbers = [float(part) for part in parts[:2] + parts[3:]]
    except ValueError:
        raise ColorcnnError(
            f"hint {text!r} has a coordinate that is not a number; expected e.g. 120,45,#c03020"
        ) from None
    size = numbers[2] if len(numbers) == 3 else None
    try:
        return Hint(numbers[0], numbers[1], parts[2], size)
    except ColorcnnError as error:
        raise ColorcnnError(f"hint {text!r}: {error}") from None


def sidecar_path(image: str | Path) -> Path:
    """NAME.hints.json beside NAME.jpg."""
    image = Path(image)
    return image.with_name(image.stem + SIDECAR_SUFFIX)


def write_hints_file(path: str | Path, hints: list[Hint]) -> None:
    """The hints as a JSON file that `read_hints_file` reads back (written atomically)."""
    payload = [
        {"x": hint.x, "y": hint.y, "color": hint.hex, **({"size": hint.size} if hint.size else {})}
        for hint in hints
    ]
    write_json(path, payload)


def hints_for_images(
    images: list[Path], hints_file: str | Path | None = None, hint: list[str] | None = None
) -> dict[Path, list[Hint]]:
    """The hints of each image that has some: those of `hints_file` and the `hint` texts
    for a single image, else each image's own NAME.hints.json. Every hint is checked
    against its image's size here, before anything is colourized or written."""
    given = read_hints_file(hints_file) if hints_file is not None else []
    given += [parse_hint_text(text) for text in hint or []]
    if given and len(images) != 1:
        raise SettingError(
            f"`hints_file` and `hint` give points in one image's pixels, but {len(images)} "
            "images were given; expected one input, or a NAME.hints.json beside each image"
        )
    found = {images[0]: given} if given else {}
    if not given:
        for image in images:
            sidecar = sidecar_path(image)
            if sidecar.is_file():
                found[image] = read_hints_file(sidecar)
    for image, hints in found.items():
        try:
            with Image.open(image) as opened:  # the header only: the size
                width, height = opened.size
        except OSError:
            continue  # an unreadable image fails on its own, in its turn
        for hint in hints:
            try:
                hint.check_inside(width, height)
            except ColorcnnError as error:
                raise ColorcnnError(f"{image}: {error}") from None
    return {image: hints for image, hints in found.items() if hints}

"""Files: the image and video suffixes colorcnn reads, and atomic writes (a reader never sees a
half-written file)."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# The still-image formats read everywhere: training folders, photos, colourizing, the demo.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"})
# Video containers told apart from photos when inputs are gathered (colorcnn colorize);
# whether a file really holds video is decided by opening it.
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm"})

# mkstemp creates files readable by their owner only; finished files get the usual mode.
_FILE_MODE = 0o666 & ~_current_umask()


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to `target`; rename it over `target` on success.

    The temporary file lives in the same folder so the final rename is atomic on POSIX.
    On any exception the temporary file is removed and `target` is left untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp_name)
    try:
        yield tmp_path
        os.chmod(tmp_path, _FILE_MODE)
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_open(target: str | os.PathLike[str], mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file for writing that replaces `target` only when closed cleanly."""
    with atomic_path(target) as tmp_path, open(tmp_path, mode) as handle:
        yield handle


def write_json(target: str | os.PathLike[str], payload: Any) -> None:
    with atomic_open(target) as handle:
        json.dump(payload, handle, indent=2, sort_keys=True)
        handle.write("\n")

"""A cache of decoded arrays, so that a second start on the same data skips decoding.

Each entry is a folder of `.npy` files named by a fingerprint of the source files. Arrays
are memory-mapped when read, so selecting one class touches only that class's pages.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import platformdirs

CACHE_ENV_VAR = "COLORCNN_CACHE_DIR"
# Bump when the cached layout changes, so stale entries are never read.
CACHE_FORMAT = 2


def default_cache_dir() -> Path:
    """`$COLORCNN_CACHE_DIR` if set, else the user cache folder (e.g. ~/.cache/colorcnn)."""
    override = os.environ.get(CACHE_ENV_VAR)
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_cache_dir("colorcnn"))


def fingerprint(stats: Iterable[tuple[str, int, int]], extra: dict | None = None) -> str:
    """A key that changes when any file is added, removed, resized or touched.

    `stats` are (path, size, mtime_ns) triples.
    """
    digest = hashlib.sha256(json.dumps({"format": CACHE_FORMAT, **(extra or {})}).encode())
    digest.update("\n".join(f"{path}\0{size}\0{mtime}" for path, size, mtime in stats).encode())
    return digest.hexdigest()[:24]


def fingerprint_paths(paths: Iterable[str | Path], extra: dict | None = None) -> str:
    stats = []
    for path in paths:
        stat = os.stat(path)
        stats.append((str(path), stat.st_size, stat.st_mtime_ns))
    return fingerprint(stats, extra)


def _entry_dir(cache_dir: Path, key: str) -> Path:
    return Path(cache_dir) / "decoded" / key


def load_arrays(cache_dir: Path, key: str) -> dict[str, np.ndarray] | None:
    entry = _entry_dir(cache_dir, key)
    manifest = entry / "arrays.json"
    if not manifest.is_file():
        return None
    try:
        names = json.loads(manifest.read_text())
        return {
            name: np.load(entry / f"{name}.npy", mmap_mode="r", allow_pickle=False)
            for name in names
        }
    except (OSError, ValueError, EOFError):
        return None  # a damaged cache entry is rebuilt, never trusted


def save_arrays(cache_dir: Path, key: str, arrays: dict[str, np.ndarray]) -> None:
    """Write the entry into a temporary folder and rename it into place when complete."""
    entry = _entry_dir(cache_dir, key)
    entry.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=entry.parent))
    try:
        for name, array in arrays.items():
            np.save(staging / f"{name}.npy", np.ascontiguousarray(array), allow_pickle=False)
        (staging / "arrays.json").write_text(json.dumps(sorted(arrays)))
        if load_arrays(cache_dir, key) is not None:
            return  # another process wrote the same entry meanwhile: the key names the content
        if entry.exists():
            shutil.rmtree(entry, ignore_errors=True)  # a damaged entry
        try:
            os.replace(staging, entry)
        except OSError:
            if load_arrays(cache_dir, key) is None:
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)

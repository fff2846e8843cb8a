"""CIFAR-10 from its official source: download, verify, extract, and read the pickled batches."""

from __future__ import annotations

import hashlib
import http.client
import io
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from colorcnn.errors import ColorcnnError, SettingError

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
ARCHIVE_NAME = "cifar-10-python.tar.gz"
EXTRACTED_DIR = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{index}" for index in range(1, 6))
TEST_BATCHES = ("test_batch",)
# Written into the extracted folder only after its archive passed the MD5 check,
# so a folder without it can never pass for a verified copy.
VERIFIED_MARKER = ".verified-md5"
IMAGE_SIDE = 32
_DOWNLOAD_CHUNK = 1 << 16


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _manual_placement_hint(cache_dir: Path, url: str) -> str:
    return (
        f"download {url} by hand and place it at {cache_dir / ARCHIVE_NAME} "
        "(or give `data`: a folder that holds the extracted batches or an image-folder tree)"
    )


def download_archive(
    url: str, destination: Path, expected_md5: str, show_progress: bool = True
) -> None:
    """Stream `url` to `destination`, checking the MD5 before the file gets its final name.

    The bytes go to a temporary `.part` file; only a complete download whose MD5 matches is
    renamed to `destination`. Anything else is deleted, so nothing can pass for a good copy.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, part_name = tempfile.mkstemp(
        prefix=f".{destination.name}.", suffix=".part", dir=destination.parent
    )
    part_path = Path(part_name)
    digest = hashlib.md5()
    try:
        with os.fdopen(fd, "wb") as part, urllib.request.urlopen(url, timeout=60) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                desc=f"Downloading {destination.name}",
                disable=not show_progress,
            ) as progress:
                for chunk in iter(lambda: response.read(_DOWNLOAD_CHUNK), b""):
                    part.write(chunk)
                    digest.update(chunk)
                    progress.update(len(chunk))
            if total is not None and part.tell() != total:
                raise ColorcnnError(
                    f"download of {url} stopped after {part.tell()} of {total} bytes; "
                    + _manual_placement_hint(destination.parent, url)
                )
        if digest.hexdigest() != expected_md5.lower():
            raise SettingError(
                f"downloaded {url} has MD5 {digest.hexdigest()}, expected {expected_md5}; "
                + _manual_placement_hint(destination.parent, url)
            )
        os.replace(part_path, destination)
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:
        raise SettingError(
            f"could not download {url} ({error}); "
            + _manual_placement_hint(destination.parent, url)
        ) from error
    finally:
        part_path.unlink(missing_ok=True)


def _extract_verified_archive(archive: Path, cache_dir: Path, expected_md5: str, url: str) -> Path:
    target = cache_dir / EXTRACTED_DIR
    staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=cache_dir))
    try:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(staging, filter="data")
                else:  # Python releases before the extraction filters existed
                    tar.extractall(staging)
        except (tarfile.TarError, EOFError, OSError, ValueError) as error:
            raise SettingError(
                f"archive {archive} is corrupt or truncated ({error}); delete it and "
                + _manual_placement_hint(cache_dir, url)
            ) from error
        extracted = staging / EXTRACTED_DIR
        missing = [
            name for name in TRAIN_BATCHES + TEST_BATCHES if not (extracted / name).is_file()
        ]
        if missing:
            raise ColorcnnError(
                f"archive {archive} lacks {', '.join(missing)} under {EXTRACTED_DIR}/; "
                "expected the official CIFAR-10 python archive"
            )
        (extracted / VERIFIED_MARKER).write_text(expected_md5 + "\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(extracted, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def ensure_cifar10(
    cache_dir: Path,
    url: str = CIFAR10_URL,
    expected_md5: str = CIFAR10_MD5,
    download: bool = True,
    show_progress: bool = True,
) -> Path:
    """Return the folder of verified, extracted CIFAR-10 batches, downloading them if needed.

    A verified copy (extracted folder with its marker, or an archive with the right MD5) is
    never downloaded again.
    """
    cache_dir = Path(cache_dir)
    expected_md5 = expected_md5.lower()
    extracted = cache_dir / EXTRACTED_DIR
    marker = extracted / VERIFIED_MARKER
    if marker.is_file() and marker.read_text().strip() == expected_md5:
        return extracted
    archive = cache_dir / ARCHIVE_NAME
    if archive.is_file():
        found_md5 = file_md5(archive)
        if found_md5 != expected_md5:
            raise ColorcnnError(
                f"archive {archive} has MD5 {found_md5}, expected {expected_md5} "
                "(truncated or not the official file); delete it and rerun to download again, or "
                + _manual_placement_hint(cache_dir, url)
            )
    elif download:
        cache_dir.mkdir(parents=True, exist_ok=True)
        download_archive(url, archive, expected_md5, show_progress)
    else:
        raise ColorcnnError(
            f"CIFAR-10 is not in {cache_dir} and downloading is off; "
            + _manual_placement_hint(cache_dir, url)
        )
    return _extract_verified_archive(archive, cache_dir, expected_md5, url)


class _BatchUnpickler(pickle.Unpickler):
    """Reads CIFAR batches, which are pickles, while refusing anything but plain numpy data.

    A pickle can name any callable to run at load time; the official batches only need
    numpy's array reconstruction, so every other global is refused.
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):  # noqa: D102 - pickle protocol
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch")
        return super().find_class(module, name)


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one pickled batch into (images uint8 (N, 32, 32, 3), labels int64 (N,))."""
    try:
        with open(path, "rb") as handle:
            batch = _BatchUnpickler(io.BufferedReader(handle), encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except Exception as error:  # a damaged pickle can raise almost anything; all mean "not a batch"
        raise ColorcnnError(
            f"{path} is not a CIFAR-10 python batch ({error}); expected a dict with data and labels"
        ) from error
    if data.ndim != 2 or data.shape[1] != 3 * IMAGE_SIDE * IMAGE_SIDE or len(data) != len(labels):
        raise ColorcnnError(
            f"{path} holds data of shape {data.shape} and {len(labels)} labels; "
            f"expected (N, {3 * IMAGE_SIDE * IMAGE_SIDE}) and N labels"
        )
    images = data.reshape(-1, 3, IMAGE_SIDE, IMAGE_SIDE).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def read_batches(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    names = TRAIN_BATCHES if split == "train" else TEST_BATCHES
    parts = [read_batch(Path(folder) / name) for name in names]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def is_batches_folder(folder: Path) -> bool:
    return all((Path(folder) / name).is_file() for name in TRAIN_BATCHES + TEST_BATCHES)

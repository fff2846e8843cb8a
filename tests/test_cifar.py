"""CIFAR-10: download, verification, extraction, batch reading, decoded cache, course data.

Everything runs on tiny data written by the tests themselves; the only server contacted is a
local one started on 127.0.0.1 for the test.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import pathlib
import pickle
import shutil
import socket
import tarfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from colorcnn.color.spaces import course_grey
from colorcnn.data import cache, cifar, datasets
from colorcnn.data.datasets import (
    CLASS_NAMES,
    DataSettings,
    load_course_data,
    load_raw_cifar10,
    resolve_categories,
)
from colorcnn.errors import ColorcnnError

PER_BATCH = 4
BATCH_NAMES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
# Labels per batch: horses (7) in every batch, a few other classes, class 8 (ship) nowhere.
BATCH_LABELS = {f"data_batch_{b}": [7, b, 7, 9] for b in range(1, 6)} | {"test_batch": [7, 0, 3, 7]}
# Each image carries its global number g in three pixels, one per channel plane, at places
# that are not symmetric, so a wrong channel order or a transposed image is caught.
R_SPOT, G_SPOT, B_SPOT = (0, 1), (2, 3), (31, 30)
R_BASE, G_BASE, B_BASE = 10, 100, 200
BACKGROUND_MAX = 10  # background pixels are below every marker value


# --------------------------------------------------------------------------- data builders


def _batch_dict(name: str, first_id: int, labels: list[int], seed: int) -> dict:
    rng = np.random.RandomState(seed)
    count = len(labels)
    planes = rng.randint(0, BACKGROUND_MAX, size=(count, 3, 32, 32)).astype(np.uint8)
    for row in range(count):
        g = first_id + row
        planes[row, 0][R_SPOT] = R_BASE + g
        planes[row, 1][G_SPOT] = G_BASE + g
        planes[row, 2][B_SPOT] = B_BASE + g
    return {
        b"batch_label": f"{name} of 6".encode(),
        b"labels": list(labels),
        b"data": planes.reshape(count, 3 * 32 * 32),  # channel-major: R, G, B planes
        b"filenames": [f"{name}_{row}.png".encode() for row in range(count)],
    }


def write_batches(folder: Path, seed: int = 0) -> Path:
    """The official layout: data_batch_1..5, test_batch and batches.meta, pickled (protocol 2)."""
    folder.mkdir(parents=True, exist_ok=True)
    for index, name in enumerate(BATCH_NAMES):
        batch = _batch_dict(name, index * PER_BATCH, BATCH_LABELS[name], seed + index)
        with open(folder / name, "wb") as handle:
            pickle.dump(batch, handle, protocol=2)
    meta = {
        b"label_names": [name.encode() for name in CLASS_NAMES],
        b"num_cases_per_batch": PER_BATCH,
        b"num_vis": 3 * 32 * 32,
    }
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump(meta, handle, protocol=2)
    return folder


def make_tarball(workdir: Path) -> tuple[bytes, str]:
    """Bytes of a small `cifar-10-python.tar.gz` in the real format, and their MD5."""
    batches = write_batches(workdir / "tar-source" / cifar.EXTRACTED_DIR)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(batches, arcname=cifar.EXTRACTED_DIR)
    body = buffer.getvalue()
    return body, hashlib.md5(body).hexdigest()


def expected_ids(split: str) -> np.ndarray:
    names = BATCH_NAMES[:5] if split == "train" else BATCH_NAMES[5:]
    return np.concatenate(
        [np.arange(PER_BATCH) + BATCH_NAMES.index(name) * PER_BATCH for name in names]
    )


def expected_labels(split: str) -> np.ndarray:
    names = BATCH_NAMES[:5] if split == "train" else BATCH_NAMES[5:]
    return np.array([label for name in names for label in BATCH_LABELS[name]], dtype=np.int64)


def ids_of(images_nhwc: np.ndarray) -> np.ndarray:
    return images_nhwc[:, R_SPOT[0], R_SPOT[1], 0].astype(np.int64) - R_BASE


def cache_dir_contents(cache_dir: Path) -> list[str]:
    if not cache_dir.exists():
        return []
    return sorted(str(path.relative_to(cache_dir)) for path in cache_dir.rglob("*"))


# --------------------------------------------------------------------------- a local server


@dataclass
class LocalServer:
    url: str
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def serve() -> Iterator[Callable[[bytes, str], LocalServer]]:
    """Start an HTTP server on 127.0.0.1 that serves `body` at /cifar-10-python.tar.gz.

    mode "full" sends the whole body; "truncated" announces the full Content-Length, sends
    half of the body, then closes the connection.
    """
    servers: list[http.server.HTTPServer] = []

    def start(body: bytes, mode: str = "full") -> LocalServer:
        record = LocalServer(url="")

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                record.requests.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "application/gzip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if mode == "truncated":
                    self.wfile.write(body[: len(body) // 2])
                    self.close_connection = True
                else:
                    self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        servers.append(server)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        record.url = f"http://127.0.0.1:{server.server_address[1]}/{cifar.ARCHIVE_NAME}"
        return record

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def closed_port_url() -> str:
    """A URL on a port nothing listens on: any attempt to download from it fails."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/{cifar.ARCHIVE_NAME}"


# --------------------------------------------------------------------------- read_batch


def test_read_batch_decodes_channel_major_rows(tmp_path: Path) -> None:
    folder = write_batches(tmp_path / "batches")
    images, labels = cifar.read_batch(folder / "data_batch_2")
    assert images.shape == (PER_BATCH, 32, 32, 3)
    assert images.dtype == np.uint8
    assert images.flags.c_contiguous
    assert labels.dtype == np.int64
    assert labels.tolist() == BATCH_LABELS["data_batch_2"]
    for row in range(PER_BATCH):
        g = PER_BATCH + row  # data_batch_2 holds images 4..7
        assert images[row, R_SPOT[0], R_SPOT[1], 0] == R_BASE + g
        assert images[row, G_SPOT[0], G_SPOT[1], 1] == G_BASE + g
        assert images[row, B_SPOT[0], B_SPOT[1], 2] == B_BASE + g
        # not transposed: the mirrored places hold background
        assert images[row, R_SPOT[1], R_SPOT[0], 0] < BACKGROUND_MAX
        assert images[row, G_SPOT[1], G_SPOT[0], 1] < BACKGROUND_MAX
        assert images[row, B_SPOT[1], B_SPOT[0], 2] < BACKGROUND_MAX
        # the markers sit in their own channel only
        assert images[row, R_SPOT[0], R_SPOT[1], 1:].max() < BACKGROUND_MAX
    with open(folder / "data_batch_2", "rb") as handle:
        raw = pickle.load(handle, encoding="bytes")
    planes = raw[b"data"].reshape(PER_BATCH, 3, 32, 32)
    np.testing.assert_array_equal(images, planes.transpose(0, 2, 3, 1))


def test_read_batches_concatenates_train_then_test(tmp_path: Path) -> None:
    folder = write_batches(tmp_path / "batches")
    assert cifar.is_batches_folder(folder)
    train_images, train_labels = cifar.read_batches(folder, "train")
    test_images, test_labels = cifar.read_batches(folder, "test")
    assert train_images.shape == (5 * PER_BATCH, 32, 32, 3)
    assert test_images.shape == (PER_BATCH, 32, 32, 3)
    np.testing.assert_array_equal(ids_of(train_images), expected_ids("train"))
    np.testing.assert_array_equal(ids_of(test_images), expected_ids("test"))
    np.testing.assert_array_equal(train_labels, expected_labels("train"))
    np.testing.assert_array_equal(test_labels, expected_labels("test"))
    (folder / "data_batch_3").unlink()
    assert not cifar.is_batches_folder(folder)


class _TouchPayload:
    """Unpickling this calls pathlib.Path.touch(marker)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


class _SystemPayload:
    """Unpickling this runs a shell command through os.system."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


@pytest.mark.parametrize("payload_class", [_TouchPayload, _SystemPayload])
def test_read_batch_refuses_code_in_a_crafted_pickle(tmp_path: Path, payload_class: type) -> None:
    # The payload is live: plain pickle would run it.
    proof = tmp_path / "proof-marker"
    pickle.loads(pickle.dumps(payload_class(proof), protocol=2))
    assert proof.exists()

    marker = tmp_path / "marker"
    crafted = tmp_path / "data_batch_1"
    batch = {b"labels": [0], b"data": payload_class(marker)}
    crafted.write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(ColorcnnError) as caught:
        cifar.read_batch(crafted)
    assert str(crafted) in str(caught.value)
    assert "refusing" in str(caught.value)
    assert not marker.exists()


@pytest.mark.parametrize(
    "content",
    [
        pickle.dumps([1, 2, 3], protocol=2),  # not a dict
        pickle.dumps({b"labels": [0]}, protocol=2),  # no data
        pickle.dumps({b"labels": [0, 1], b"data": np.zeros((2, 10), np.uint8)}, protocol=2),
        pickle.dumps({b"labels": [0], b"data": np.zeros((2, 3072), np.uint8)}, protocol=2),
        b"this is not a pickle at all",
        b"",
    ],
    ids=["list", "no-data", "wrong-width", "label-count", "garbage", "empty"],
)
def test_read_batch_rejects_malformed_batches(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "data_batch_1"
    path.write_bytes(content)
    with pytest.raises(ColorcnnError) as caught:
        cifar.read_batch(path)
    assert str(path) in str(caught.value)
    assert "\n" not in str(caught.value)


# --------------------------------------------------------------------------- ensure_cifar10


def test_ensure_cifar10_downloads_verifies_and_extracts(tmp_path: Path, serve) -> None:
    body, md5 = make_tarball(tmp_path)
    server = serve(body)
    cache_dir = tmp_path / "cache"

    folder = cifar.ensure_cifar10(cache_dir, url=server.url, expected_md5=md5)

    assert folder == cache_dir / cifar.EXTRACTED_DIR
    assert server.requests == [f"/{cifar.ARCHIVE_NAME}"]
    assert (cache_dir / cifar.ARCHIVE_NAME).read_bytes() == body
    for name in BATCH_NAMES + ["batches.meta"]:
        assert (folder / name).is_file()
    assert (folder / cifar.VERIFIED_MARKER).read_text().strip() == md5
    assert not list(cache_dir.glob("*.part")) and not list(cache_dir.glob(".*.part"))
    assert not list(cache_dir.glob(".extract-*"))
    images, labels = cifar.read_batches(folder, "test")
    np.testing.assert_array_equal(ids_of(images), expected_ids("test"))
    np.testing.assert_array_equal(labels, expected_labels("test"))

    # A second call finds the verified folder and does not contact the server.
    again = cifar.ensure_cifar10(cache_dir, url=server.url, expected_md5=md5)
    assert again == folder
    assert len(server.requests) == 1

    # Without the extracted folder, the verified archive is extracted again, still offline.
    shutil.rmtree(folder)
    again = cifar.ensure_cifar10(cache_dir, url=closed_port_url(), expected_md5=md5)
    assert (again / cifar.VERIFIED_MARKER).read_text().strip() == md5
    assert len(server.requests) == 1


def test_extracted_folder_without_marker_is_not_trusted(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    write_batches(cache_dir / cifar.EXTRACTED_DIR)  # looks complete, but never verified
    with pytest.raises(ColorcnnError):
        cifar.ensure_cifar10(cache_dir, url=closed_port_url(), expected_md5="0" * 32)


def test_wrong_md5_download_leaves_nothing_behind(tmp_path: Path, serve) -> None:
    body, md5 = make_tarball(tmp_path)
    server = serve(body)
    cache_dir = tmp_path / "cache"
    wrong = "0" * 32

    with pytest.raises(ColorcnnError) as caught:
        cifar.ensure_cifar10(cache_dir, url=server.url, expected_md5=wrong)

    message = str(caught.value)
    assert "\n" not in message
    assert md5 in message and wrong in message
    assert "by hand" in message
    assert str(cache_dir / cifar.ARCHIVE_NAME) in message
    assert server.requests == [f"/{cifar.ARCHIVE_NAME}"]
    assert cache_dir_contents(cache_dir) == []


def test_truncated_download_raises_and_leaves_nothing_behind(tmp_path: Path, serve) -> None:
    body, md5 = make_tarball(tmp_path)
    server = serve(body, "truncated")
    cache_dir = tmp_path / "cache"

    with pytest.raises(ColorcnnError) as caught:
        cifar.ensure_cifar10(cache_dir, url=server.url, expected_md5=md5)

    message = str(caught.value)
    assert "\n" not in message
    assert f"{len(body) // 2} of {len(body)} bytes" in message
    assert "by hand" in message
    assert server.requests
    assert cache_dir_contents(cache_dir) == []


def test_unreachable_server_raises_with_the_manual_hint(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    url = closed_port_url()
    with pytest.raises(ColorcnnError) as caught:
        cifar.ensure_cifar10(cache_dir, url=url, expected_md5="0" * 32)
    assert url in str(caught.value)
    assert str(cache_dir / cifar.ARCHIVE_NAME) in str(caught.value)
    assert cache_dir_contents(cache_dir) == []


def test_no_copy_and_download_off_raises(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    with pytest.raises(ColorcnnError) as caught:
        cifar.ensure_cifar10(cache_dir, url=closed_port_url(), download=False)
    assert "downloading is off" in str(caught.value)
    assert str(cache_dir / cifar.ARCHIVE_NAME) in str(caught.value)


def test_archive_placed_by_hand_is_used_without_download(tmp_path: Path) -> None:
    body, md5 = make_tarball(tmp_path)
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    (cache_dir / cifar.ARCHIVE_NAME).write_bytes(body)

    folder = cifar.ensure_cifar10(cache_dir, url=closed_port_url(), expected_md5=md5)

    assert folder == cache_dir / cifar.EXTRACTED_DIR
    assert cifar.is_batches_folder(folder)
    assert (folder / cifar.VERIFIED_MARKER).read_text().strip() == md5
    images, _ = cifar.read_batch(folder / "data_batch_5")
    np.testing.assert_array_equal(ids_of(images), np.arange(16, 20))


def test_truncated_archive_by_hand_fails_the_md5_check(tmp_path: Path) -> None:
    body, md5 = make_tarball(tmp_path)
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    archive = cache_dir / cifar.ARCHIVE_NAME
    archive.write_bytes(body[: len(body) // 2])

    with pytest.raises(ColorcnnError) as caught:
        cifar.ensure_cifar10(cache_dir, url=closed_port_url(), expected_md5=md5)

    message = str(caught.value)
    assert "MD5" in message
    assert hashlib.md5(body[: len(body) // 2]).hexdigest() in message
    assert md5 in message
    assert not (cache_dir / cifar.EXTRACTED_DIR).exists()


def test_truncated_archive_with_matching_md5_fails_extraction(tmp_path: Path) -> None:
    body, _ = make_tarball(tmp_path)
    truncated = body[: len(body) // 2]
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    (cache_dir / cifar.ARCHIVE_NAME).write_bytes(truncated)

    with pytest.raises(ColorcnnError) as caught:
        cifar.ensure_cifar10(
            cache_dir, url=closed_port_url(), expected_md5=hashlib.md5(truncated).hexdigest()
        )

    assert "corrupt or truncated" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert not (cache_dir / cifar.EXTRACTED_DIR).exists()
    assert cache_dir_contents(cache_dir) == [cifar.ARCHIVE_NAME]  # no staging folder left


def test_archive_without_the_batches_is_rejected(tmp_path: Path) -> None:
    source = tmp_path / "other" / cifar.EXTRACTED_DIR
    source.mkdir(parents=True)
    (source / "readme.html").write_text("not the batches")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(source, arcname=cifar.EXTRACTED_DIR)
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    (cache_dir / cifar.ARCHIVE_NAME).write_bytes(buffer.getvalue())

    with pytest.raises(ColorcnnError) as caught:
        cifar.ensure_cifar10(
            cache_dir,
            url=closed_port_url(),
            expected_md5=hashlib.md5(buffer.getvalue()).hexdigest(),
        )
    assert "data_batch_1" in str(caught.value)
    assert not (cache_dir / cifar.EXTRACTED_DIR).exists()


# --------------------------------------------------------------------------- decoded cache


def _entries(cache_dir: Path) -> list[Path]:
    decoded = cache_dir / "decoded"
    if not decoded.is_dir():
        return []
    return sorted(path for path in decoded.iterdir() if not path.name.startswith("."))


def test_load_raw_cifar10_decodes_and_reuses_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_batches(tmp_path / "batches")
    cache_dir = tmp_path / "cache"

    first = load_raw_cifar10(folder, cache_dir)

    assert first.train_images.shape == (5 * PER_BATCH, 32, 32, 3)
    assert first.test_images.shape == (PER_BATCH, 32, 32, 3)
    assert first.train_images.dtype == np.uint8
    np.testing.assert_array_equal(ids_of(first.train_images), expected_ids("train"))
    np.testing.assert_array_equal(first.train_labels, expected_labels("train"))
    np.testing.assert_array_equal(first.test_labels, expected_labels("test"))
    entries = _entries(cache_dir)
    assert len(entries) == 1
    assert (entries[0] / "arrays.json").is_file()

    # The second call must not decode: reading a batch now fails loudly.
    def no_decoding(*args: object, **kwargs: object):
        raise AssertionError("decoded again instead of using the cache")

    monkeypatch.setattr(cifar, "read_batches", no_decoding)
    second = load_raw_cifar10(folder, cache_dir)
    for name in ("train_images", "train_labels", "test_images", "test_labels"):
        np.testing.assert_array_equal(getattr(second, name), getattr(first, name))
        assert getattr(second, name).dtype == getattr(first, name).dtype
    assert _entries(cache_dir) == entries
    monkeypatch.undo()

    # Touching a batch file (new mtime) invalidates the entry: it is decoded again.
    stat = os.stat(folder / "test_batch")
    os.utime(folder / "test_batch", ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    third = load_raw_cifar10(folder, cache_dir)
    np.testing.assert_array_equal(third.test_images, first.test_images)
    assert len(_entries(cache_dir)) == 2


def test_changed_batch_content_is_seen_through_the_cache(tmp_path: Path) -> None:
    folder = write_batches(tmp_path / "batches")
    cache_dir = tmp_path / "cache"
    first = load_raw_cifar10(folder, cache_dir)

    # Rewrite test_batch with other labels and pixels (and a new mtime, set explicitly so the
    # test does not depend on the file system's timestamp resolution).
    stat = os.stat(folder / "test_batch")
    batch = _batch_dict("test_batch", 40, [1, 1, 2], seed=42)
    with open(folder / "test_batch", "wb") as handle:
        pickle.dump(batch, handle, protocol=2)
    os.utime(folder / "test_batch", ns=(stat.st_atime_ns, stat.st_mtime_ns + 7_000_000_000))

    second = load_raw_cifar10(folder, cache_dir)
    assert second.test_labels.tolist() == [1, 1, 2]
    np.testing.assert_array_equal(ids_of(second.test_images), [40, 41, 42])
    np.testing.assert_array_equal(second.train_images, first.train_images)


def test_load_raw_cifar10_finds_the_extracted_subfolder(tmp_path: Path) -> None:
    write_batches(tmp_path / "data" / cifar.EXTRACTED_DIR)
    raw = load_raw_cifar10(tmp_path / "data", tmp_path / "cache")
    np.testing.assert_array_equal(ids_of(raw.test_images), expected_ids("test"))


def test_load_raw_cifar10_uses_the_cache_dir_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_cache = tmp_path / "env-cache"
    monkeypatch.setenv(cache.CACHE_ENV_VAR, str(env_cache))
    assert cache.default_cache_dir() == env_cache
    folder = write_batches(tmp_path / "batches")
    load_raw_cifar10(folder)
    assert len(_entries(env_cache)) == 1


def test_load_raw_cifar10_without_data_uses_the_official_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_batches(tmp_path / "cache" / cifar.EXTRACTED_DIR)
    calls: list[Path] = []

    def fake_ensure(cache_dir: Path, show_progress: bool = True) -> Path:
        calls.append(cache_dir)
        return folder

    monkeypatch.setattr(cifar, "ensure_cifar10", fake_ensure)
    raw = load_raw_cifar10(None, tmp_path / "cache")
    assert calls == [tmp_path / "cache"]
    np.testing.assert_array_equal(raw.train_labels, expected_labels("train"))


def test_damaged_cache_entry_is_rebuilt(tmp_path: Path) -> None:
    folder = write_batches(tmp_path / "batches")
    cache_dir = tmp_path / "cache"
    first = load_raw_cifar10(folder, cache_dir)
    (entry,) = _entries(cache_dir)
    (entry / "train_images.npy").write_bytes(b"broken")
    second = load_raw_cifar10(folder, cache_dir)
    np.testing.assert_array_equal(second.train_images, first.train_images)


# --------------------------------------------------------------------------- course data


def _expected_course_split(
    images: np.ndarray, labels: np.ndarray, categories: list[int], rng: np.random.RandomState
) -> np.ndarray:
    selected = images[np.isin(labels, categories)].copy()
    rng.shuffle(selected)
    return selected.transpose(0, 3, 1, 2).astype(np.float64) / 256.0


def _expected_course(folder: Path, categories: list[int], seed: int):
    train_images, train_labels = cifar.read_batches(folder, "train")
    test_images, test_labels = cifar.read_batches(folder, "test")
    rng = np.random.RandomState(seed)  # one generator, train first, then test
    train = _expected_course_split(train_images, train_labels, categories, rng)
    test = _expected_course_split(test_images, test_labels, categories, rng)
    return train, test


@pytest.mark.parametrize("category", ["horse", "7", 7, " Horse "])
def test_course_data_for_one_class(tmp_path: Path, category: str | int) -> None:
    folder = write_batches(tmp_path / "batches")
    data = load_course_data(
        DataSettings(data=str(folder), category=category, seed=0), tmp_path / "cache"
    )

    horses_train = int((expected_labels("train") == 7).sum())
    horses_test = int((expected_labels("test") == 7).sum())
    assert data.categories == [7]
    assert tuple(data.train_rgb.shape) == (horses_train, 3, 32, 32)
    assert tuple(course_grey(data.train_rgb).shape) == (horses_train, 1, 32, 32)
    assert tuple(data.test_rgb.shape) == (horses_test, 3, 32, 32)
    assert tuple(course_grey(data.test_rgb).shape) == (horses_test, 1, 32, 32)

    train_rgb = data.train_rgb.numpy()
    test_rgb = data.test_rgb.numpy()
    # Only horses: each image's id belongs to an image labelled 7.
    horse_ids_train = set(expected_ids("train")[expected_labels("train") == 7].tolist())
    horse_ids_test = set(expected_ids("test")[expected_labels("test") == 7].tolist())
    train_ids = np.rint(train_rgb[:, 0, R_SPOT[0], R_SPOT[1]] * 256).astype(int) - R_BASE
    test_ids = np.rint(test_rgb[:, 0, R_SPOT[0], R_SPOT[1]] * 256).astype(int) - R_BASE
    assert sorted(train_ids.tolist()) == sorted(horse_ids_train)
    assert sorted(test_ids.tolist()) == sorted(horse_ids_test)

    # Values are uint8 / 256, shuffled exactly like RandomState(seed).shuffle, train then test.
    expected_train, expected_test = _expected_course(folder, [7], seed=0)
    np.testing.assert_array_equal(train_rgb.astype(np.float64), expected_train)
    np.testing.assert_array_equal(test_rgb.astype(np.float64), expected_test)
    assert train_rgb.max() < 1.0 and train_rgb.min() >= 0.0
    # Grey is the mean of the three channels.
    np.testing.assert_allclose(
        course_grey(data.train_rgb).numpy(),
        expected_train.mean(axis=1, keepdims=True),
        rtol=0,
        atol=1e-6,
    )
    np.testing.assert_allclose(
        course_grey(data.test_rgb).numpy(),
        expected_test.mean(axis=1, keepdims=True),
        rtol=0,
        atol=1e-6,
    )


def test_course_data_for_all_classes(tmp_path: Path) -> None:
    folder = write_batches(tmp_path / "batches")
    data = load_course_data(
        DataSettings(data=str(folder), category="all", seed=3), tmp_path / "cache"
    )
    assert data.categories == list(range(10))
    assert tuple(data.train_rgb.shape) == (5 * PER_BATCH, 3, 32, 32)
    assert tuple(course_grey(data.test_rgb).shape) == (PER_BATCH, 1, 32, 32)
    expected_train, expected_test = _expected_course(folder, list(range(10)), seed=3)
    np.testing.assert_array_equal(data.train_rgb.numpy().astype(np.float64), expected_train)
    np.testing.assert_array_equal(data.test_rgb.numpy().astype(np.float64), expected_test)


def test_course_shuffle_is_deterministic_and_depends_on_the_seed(tmp_path: Path) -> None:
    folder = write_batches(tmp_path / "batches")
    cache_dir = tmp_path / "cache"
    first = load_course_data(DataSettings(data=str(folder), category="all", seed=0), cache_dir)
    again = load_course_data(DataSettings(data=str(folder), category="all", seed=0), cache_dir)
    other = load_course_data(DataSettings(data=str(folder), category="all", seed=1), cache_dir)
    assert np.array_equal(first.train_rgb.numpy(), again.train_rgb.numpy())
    assert np.array_equal(first.test_rgb.numpy(), again.test_rgb.numpy())
    assert not np.array_equal(first.train_rgb.numpy(), other.train_rgb.numpy())
    # the same images, only in another order
    first_ids = sorted(first.train_rgb.numpy()[:, 0, R_SPOT[0], R_SPOT[1]].tolist())
    other_ids = sorted(other.train_rgb.numpy()[:, 0, R_SPOT[0], R_SPOT[1]].tolist())
    assert first_ids == other_ids
    # and the order is not the file order
    file_order = (expected_ids("train") + R_BASE) / 256.0
    assert not np.array_equal(first.train_rgb.numpy()[:, 0, R_SPOT[0], R_SPOT[1]], file_order)


@pytest.mark.parametrize("category", ["ship", "1"])
def test_course_data_needs_images_of_the_class_in_both_splits(
    tmp_path: Path, category: str
) -> None:
    folder = write_batches(tmp_path / "batches")  # no ships at all; automobile only in train
    with pytest.raises(ColorcnnError) as caught:
        load_course_data(DataSettings(data=str(folder), category=category), tmp_path / "cache")
    assert "at least one" in str(caught.value)


def test_course_data_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ColorcnnError) as caught:
        load_course_data(DataSettings(data=str(tmp_path / "nowhere")), tmp_path / "cache")
    assert str(tmp_path / "nowhere") in str(caught.value)


def test_folder_with_neither_batches_nor_tree_is_rejected(tmp_path: Path) -> None:
    folder = tmp_path / "junk"
    folder.mkdir()
    (folder / "data_batch_1").write_bytes(b"only one batch")
    with pytest.raises(ColorcnnError) as caught:
        load_raw_cifar10(folder, tmp_path / "cache")
    assert "neither" in str(caught.value)


# --------------------------------------------------------------------------- categories


@pytest.mark.parametrize(
    ("category", "expected"),
    [
        ("horse", [7]),
        ("7", [7]),
        (7, [7]),
        ("HORSE", [7]),
        ("airplane", [0]),
        ("0", [0]),
        ("truck", [9]),
        ("all", list(range(10))),
        ("ALL", list(range(10))),
    ],
)
def test_resolve_categories(category: str | int, expected: list[int]) -> None:
    assert resolve_categories(category) == expected


@pytest.mark.parametrize("category", ["unicorn", "10", "-1", "", "horses"])
def test_resolve_categories_rejects_unknown_names(category: str) -> None:
    with pytest.raises(ColorcnnError) as caught:
        resolve_categories(category)
    message = str(caught.value)
    assert "\n" not in message
    for name in CLASS_NAMES:
        assert name in message
    assert "all" in message


def test_data_settings_defaults() -> None:
    settings = DataSettings()
    assert settings.to_dict() == {
        "data": None, "category": "horse", "seed": 0, "dataset": "cifar10", "crop_size": 64,
        "crops_per_photo": 8, "cifar_data": None, "cifar_images": 5000,
    }  # fmt: skip
    assert datasets.resolve_categories(settings.category) == [7]

"""The course's colour palette: k-means centres over training pixels, and nearest-centre targets."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
from pathlib import Path

import numpy as np
import torch

from colorcnn.errors import ColorcnnError, first_line

DEFAULT_NUM_COLOURS = 24
# k-means on a seeded sample of pixels finds the same centres as on all of them to within
# a fraction of a grey level, in a fraction of the time (5000 horses are 5.1 M pixels).
DEFAULT_SAMPLE_PIXELS = 200_000
# Bounds the (pixels x colours) distance matrix to a few tens of MB per chunk.
_TARGET_CHUNK_PIXELS = 1 << 18
# Gap between the two best scores, in units of the dtype's rounding of |x|^2 + |c|^2,
# below which the expanded distance could have swapped them (generous: the error is a few
# units; TF32 matrix multiplies on CUDA round to about 2^-10, which a float32 bound misses,
# so CUDA gets the half-precision bound).
_RANKING_TOLERANCE_ULPS = 64


def fit_palette(
    rgb: torch.Tensor,
    num_colours: int = DEFAULT_NUM_COLOURS,
    seed: int = 0,
    sample_pixels: int | None = DEFAULT_SAMPLE_PIXELS,
    cache_dir: Path | None = None,
) -> torch.Tensor:
    """Cluster the RGB pixels of `rgb` (N, 3, H, W) into `num_colours` centres (num_colours, 3).

    Deterministic for a seed. Centres are sorted by brightness so that palettes are easy to
    compare and to picture. With `cache_dir` (colorcnn.data.cache), the centres are kept
    there under a digest of the pixels and the settings, and a later call on the same images
    reads them back instead of fitting again (importing scikit-learn and fitting take 3-5 s
    of every training start).
    """
    if rgb.ndim != 4 or rgb.shape[1] != 3:
        raise ColorcnnError(
            f"palette needs RGB images of shape (N, 3, H, W), got {tuple(rgb.shape)}"
        )
    if cache_dir is None:
        return _fit(rgb, num_colours, seed, sample_pixels)
    from colorcnn.data import cache

    key = _cache_key(rgb, num_colours, seed, sample_pixels)
    cached = cache.load_arrays(cache_dir, key)
    if cached is not None and cached["centres"].shape == (num_colours, 3):
        return torch.from_numpy(np.array(cached["centres"], dtype=np.float32))
    centres = _fit(rgb, num_colours, seed, sample_pixels)
    # A read-only or full cache, or another process writing the same entry, costs only the
    # next start its fitting.
    with contextlib.suppress(OSError):
        cache.save_arrays(cache_dir, key, {"centres": centres.numpy()})
    return centres


def _cache_key(rgb: torch.Tensor, num_colours: int, seed: int, sample_pixels: int | None) -> str:
    from colorcnn.data import cache

    pixels = rgb.detach().cpu().contiguous().numpy()
    settings = {
        "kind": "palette",
        "recipe": _FIT_RECIPE,
        "pixels": hashlib.sha256(pixels.data).hexdigest(),
        "dtype": str(pixels.dtype),
        "shape": list(pixels.shape),
        "num_colours": num_colours,
        "seed": seed,
        "sample_pixels": sample_pixels,
        # Another scikit-learn may place the centres differently.
        "scikit-learn": importlib.metadata.version("scikit-learn"),
    }
    return cache.fingerprint([], settings)


# Bump when _fit changes how it fits (sampling, k-means settings, order), so that cached
# palettes of the old recipe are never read back.
_FIT_RECIPE = 1


def _fit(rgb: torch.Tensor, num_colours: int, seed: int, sample_pixels: int | None) -> torch.Tensor:
    pixels = rgb.permute(0, 2, 3, 1).reshape(-1, 3).double().cpu().numpy()
    if len(pixels) < num_colours:
        raise ColorcnnError(f"palette needs at least {num_colours} pixels, got {len(pixels)}")
    rng = np.random.RandomState(seed)
    if sample_pixels is not None and len(pixels) > sample_pixels:
        pixels = pixels[rng.choice(len(pixels), size=sample_pixels, replace=False)]
    # Imported here: scikit-learn takes over a second to import, and only fitting needs it
    # (colourizing, evaluating and the demo start that much sooner).
    from sklearn.cluster import KMeans

    kmeans = KMeans(n_clusters=num_colours, n_init=4, random_state=seed).fit(pixels)
    centres = kmeans.cluster_centers_
    order = np.argsort(centres.sum(axis=1), kind="stable")
    return torch.from_numpy(centres[order].astype(np.float32))


def load_palette(path: str | Path) -> torch.Tensor:
    """A palette from a file: NumPy `.npy` (the course shipped `colour_kmeans24_cat7.npy`),
    or JSON, either a list of [r, g, b] or a run's `palette.json`. RGB on the /256 scale."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".npy":
            values = np.load(path, allow_pickle=False)
        else:
            loaded = json.loads(path.read_text())
            values = loaded["colours"] if isinstance(loaded, dict) else loaded
        values = np.squeeze(np.asarray(values, dtype=np.float64))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ColorcnnError(
            f"{path} is not a readable palette ({first_line(error)}); expected a .npy array or "
            "JSON list of [r, g, b] rows"
        ) from error
    if values.ndim != 2 or values.shape[1] != 3 or values.shape[0] < 2:
        raise ColorcnnError(
            f"palette {path} has shape {values.shape}; expected (num_colours >= 2, 3)"
        )
    if not np.isfinite(values).all() or values.min() < 0 or values.max() > 1:
        raise ColorcnnError(
            f"palette {path} has values from {values.min():g} to {values.max():g}; expected "
            "finite RGB / 256 in [0, 1]"
        )
    return torch.from_numpy(values.astype(np.float32))


def check_palette(palette: torch.Tensor) -> torch.Tensor:
    if palette.ndim != 2 or palette.shape[1] != 3 or palette.shape[0] < 2:
        raise ColorcnnError(
            f"palette must have shape (num_colours >= 2, 3), got {tuple(palette.shape)}"
        )
    return palette


def nearest_colour(rgb: torch.Tensor, palette: torch.Tensor) -> torch.Tensor:
    """Index of the nearest palette centre (Euclidean in RGB) of each pixel.

    rgb (N, 3, H, W) -> targets int64 (N, 1, H, W), as the course's targets.
    """
    check_palette(palette)
    if rgb.ndim != 4 or rgb.shape[1] != 3:
        raise ColorcnnError(f"expected RGB images of shape (N, 3, H, W), got {tuple(rgb.shape)}")
    n, _, h, w = rgb.shape
    pixels = rgb.permute(0, 2, 3, 1).reshape(-1, 3)
    if not pixels.is_floating_point():
        pixels = pixels.float()
    palette = palette.to(pixels)
    # |x - c|^2 = |x|^2 - 2 x.c + |c|^2, and |x|^2 is the same for every colour: one matrix
    # multiply ranks the colours, several times faster than the (P, K, 3) differences. Its
    # rounding can swap two colours that are nearly equally near, so those few pixels are
    # decided again by the differences themselves: the result is the exact nearest colour.
    squared_norms = (palette * palette).sum(dim=1)[:, None]  # (K, 1)
    largest_norm = squared_norms.max()
    rounding = torch.finfo(pixels.dtype).eps
    if pixels.device.type == "cuda":
        rounding = max(rounding, torch.finfo(torch.float16).eps)
    tolerance = _RANKING_TOLERANCE_ULPS * rounding
    targets = torch.empty(len(pixels), dtype=torch.int64, device=rgb.device)
    for start in range(0, len(pixels), _TARGET_CHUNK_PIXELS):
        chunk = pixels[start : start + _TARGET_CHUNK_PIXELS]
        # (K, P): the reductions over the colours then run across pixels, and the best two
        # by min, mask, min take 0.6 of the time of topk(2) over rows of K.
        scores = torch.addmm(squared_norms, palette, chunk.T, alpha=-2.0)
        best, nearest = scores.min(dim=0)
        scores.scatter_(0, nearest[None], float("inf"))
        margin = scores.amin(dim=0) - best
        magnitude = (chunk * chunk).sum(dim=1) + largest_norm
        close = margin <= tolerance * magnitude
        if close.any():
            differences = chunk[close][:, None, :] - palette[None, :, :]
            nearest[close] = (differences**2).sum(dim=-1).argmin(dim=1)
        targets[start : start + len(chunk)] = nearest
    return targets.reshape(n, h, w).unsqueeze(1)


def palette_image(indices: torch.Tensor, palette: torch.Tensor) -> torch.Tensor:
    """Colour indices (N, 1, H, W) or (N, H, W) -> RGB (N, 3, H, W) from the palette."""
    if indices.ndim == 4:
        indices = indices[:, 0]
    return rows_at(palette.to(indices.device), indices).permute(0, 3, 1, 2).contiguous()


def rows_at(table: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """`table[indices]` (*indices.shape, C) for a (K, C) table: index_select over the
    flattened indices is 3.4x faster than advanced indexing on a CPU (100 x 32 x 32 pixels
    of a 24-colour table: 0.28 against 0.95 ms)."""
    return table.index_select(0, indices.reshape(-1)).view(*indices.shape, table.shape[1])

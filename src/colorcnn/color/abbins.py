"""Chroma as classes: quantized ab bins, soft targets, the colour prior and its rebalancing,
and decoding by arg-max, mean or annealed mean (Zhang, Isola and Efros, ECCV 2016).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from colorcnn.errors import ColorcnnError

BIN_STEP = 10.0  # width of an ab bin
AB_EXTENT = 110.0  # bin centres lie on the grid -110, -100, ..., 110 in a and in b
SOFT_NEIGHBOURS = 5  # soft encoding spreads each pixel over its 5 nearest bins ...
SOFT_SIGMA = 5.0  # ... with Gaussian weights of this width, in ab units
PRIOR_SIGMA = 5.0  # smoothing of the empirical prior, in ab units
REBALANCE_LAMBDA = 0.5  # mix of the smoothed prior with the uniform distribution
ANNEALED_T = 0.38  # the paper's temperature for the annealed mean
# The in-gamut bins are those that receive the ab of at least one sRGB colour, found by
# converting a regular grid of this many levels per RGB channel. 64 levels find 261 bins;
# finer grids add at most one more sliver bin. (The paper's 313 bins come from the empirical
# hull of ImageNet's ab values, which reaches beyond the sRGB gamut.)
_GAMUT_RGB_LEVELS = 64
_NEAREST_CHUNK = 1 << 16


def in_gamut_bins() -> torch.Tensor:
    """Centres (Q, 2) of the ab bins that hold at least one displayable sRGB colour."""
    return _in_gamut_bins().clone()


@functools.lru_cache(maxsize=1)
def _in_gamut_bins() -> torch.Tensor:
    from colorcnn.color.spaces import rgb_to_lab

    levels = torch.linspace(0.0, 1.0, _GAMUT_RGB_LEVELS, dtype=torch.float64)
    cube = torch.stack(torch.meshgrid(levels, levels, levels, indexing="ij"))  # (3, n, n, n)
    ab = rgb_to_lab(cube.reshape(1, 3, -1, 1))[0, 1:, :, 0].T  # (n^3, 2)
    occupied = torch.unique(torch.round(ab / BIN_STEP).long(), dim=0)  # sorted by a, then b
    return (occupied.double() * BIN_STEP).float()


@dataclass
class ABBins:
    """The ab bins and everything computed from them."""

    centres: torch.Tensor  # (Q, 2) ab of each bin

    @classmethod
    def in_gamut(cls) -> ABBins:
        return cls(in_gamut_bins())

    @property
    def num_bins(self) -> int:
        return len(self.centres)

    def nearest(self, ab: torch.Tensor) -> torch.Tensor:
        """Index of the nearest bin of each pixel: ab (N, 2, H, W) -> (N, H, W) int64."""
        n, _, h, w = ab.shape
        pixels = ab.permute(0, 2, 3, 1).reshape(-1, 2)
        centres = self.centres.to(ab)
        nearest = torch.empty(len(pixels), dtype=torch.int64, device=ab.device)
        for start in range(0, len(pixels), _NEAREST_CHUNK):  # bounds the (P, Q) distances
            chunk = pixels[start : start + _NEAREST_CHUNK]
            nearest[start : start + len(chunk)] = torch.cdist(chunk, centres).argmin(dim=1)
        return nearest.reshape(n, h, w)

    def sparse_soft_encode(self, ab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The 5 nearest bins of each pixel and their Gaussian weights, summing to 1.

        ab (N, 2, H, W) -> (indices (N, 5, H, W) int64, weights (N, 5, H, W)); the first
        index is the nearest bin. Losses gather at these indices instead of building the
        dense (N, Q, H, W) targets.
        """
        n, _, h, w = ab.shape
        pixels = ab.permute(0, 2, 3, 1).reshape(-1, 2)
        distances = torch.cdist(pixels, self.centres.to(ab))  # (P, Q)
        nearest_d, nearest_i = distances.topk(SOFT_NEIGHBOURS, dim=1, largest=False, sorted=True)
        weights = torch.softmax(-(nearest_d**2) / (2 * SOFT_SIGMA**2), dim=1)
        return (
            nearest_i.reshape(n, h, w, -1).permute(0, 3, 1, 2),
            weights.reshape(n, h, w, -1).permute(0, 3, 1, 2),
        )

    def soft_encode(self, ab: torch.Tensor) -> torch.Tensor:
        """Soft targets (N, Q, H, W): Gaussian weights on the 5 nearest bins, summing to 1."""
        indices, weights = self.sparse_soft_encode(ab)
        n, _, h, w = ab.shape
        encoded = torch.zeros(n, self.num_bins, h, w, dtype=ab.dtype, device=ab.device)
        return encoded.scatter_(1, indices, weights)

    def empirical_prior(self, ab: torch.Tensor) -> torch.Tensor:
        """Share of pixels whose nearest bin is each bin (Q,), from ab (N, 2, H, W)."""
        counts = torch.bincount(self.nearest(ab).flatten(), minlength=self.num_bins).double()
        return (counts / counts.sum()).float()

    def smoothed_prior(self, prior: torch.Tensor, sigma: float = PRIOR_SIGMA) -> torch.Tensor:
        """The prior blurred by a Gaussian of `sigma` ab units over the ab plane."""
        side = int(round(2 * AB_EXTENT / BIN_STEP)) + 1
        index = ((self.centres + AB_EXTENT) / BIN_STEP).round().long()  # (Q, 2)
        plane = np.zeros((side, side))
        plane[index[:, 0].numpy(), index[:, 1].numpy()] = prior.double().numpy()
        from scipy.ndimage import gaussian_filter  # here: only the prior needs scipy

        blurred = gaussian_filter(plane, sigma=sigma / BIN_STEP, mode="constant")
        smoothed = torch.from_numpy(blurred[index[:, 0].numpy(), index[:, 1].numpy()])
        return (smoothed / smoothed.sum()).float()

    def rebalancing_weights(
        self, prior: torch.Tensor, lam: float = REBALANCE_LAMBDA, sigma: float = PRIOR_SIGMA
    ) -> torch.Tensor:
        """w ∝ ((1 - λ) p̃ + λ / Q)^-1, normalised so that Σ_q p̃_q w_q = 1."""
        smoothed = self.smoothed_prior(prior, sigma).double()
        weights = 1.0 / ((1 - lam) * smoothed + lam / self.num_bins)
        weights = weights / (smoothed * weights).sum()
        return weights.float()

    def decode(
        self, logits: torch.Tensor, method: str = "annealed", temperature: float = ANNEALED_T
    ) -> torch.Tensor:
        """Logits (N, Q, H, W) -> ab (N, 2, H, W) by 'argmax', 'mean' or 'annealed' mean."""
        centres = self.centres.to(logits)
        if method == "argmax":
            return centres[logits.argmax(dim=1)].permute(0, 3, 1, 2)
        if method == "mean":
            temperature = 1.0
        elif method != "annealed":
            raise ValueError(f"decode method must be argmax, mean or annealed, got {method!r}")
        positive_temperature(temperature)
        # softmax(log p / T) is softmax(logits / T): the log-softmax normaliser cancels.
        probabilities = torch.softmax(logits / temperature, dim=1)
        return torch.einsum("nqhw,qc->nchw", probabilities, centres)


def positive_temperature(temperature: float) -> float:
    """The annealed mean's temperature, refused unless it is a positive number (NaN too)."""
    if not temperature > 0:
        raise ColorcnnError(f"temperature must be a positive number, got {temperature}")
    return temperature


__all__ = ["ABBins", "ANNEALED_T", "in_gamut_bins", "positive_temperature"]

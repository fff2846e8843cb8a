"""The ab bins: which exist, nearest bins, soft encoding, the prior, rebalancing, decoding."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.color import rgb2lab

from colorcnn.color.abbins import (
    ANNEALED_T,
    PRIOR_SIGMA,
    SOFT_NEIGHBOURS,
    SOFT_SIGMA,
    ABBins,
    in_gamut_bins,
)
from colorcnn.color.spaces import rgb_to_lab
from colorcnn.errors import ColorcnnError

STEP = 10


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def bins() -> ABBins:
    return ABBins.in_gamut()


@pytest.fixture(scope="module")
def bin_set(bins: ABBins) -> set[tuple[int, int]]:
    return {(int(a), int(b)) for a, b in bins.centres.round().long().tolist()}


@pytest.fixture(scope="module")
def skimage_occupied() -> set[tuple[int, int]]:
    """The definition, computed independently: the grid points that the ab of some sRGB
    colour (a 64-level cube, as the library uses, converted by scikit-image) rounds to."""
    levels = np.linspace(0.0, 1.0, 64)
    cube = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1)
    ab = rgb2lab(cube.reshape(-1, 1, 3))[:, 0, 1:]
    occupied = np.unique(np.round(ab / STEP).astype(np.int64), axis=0) * STEP
    return {(int(a), int(b)) for a, b in occupied}


def _random_srgb_ab(seed: int, n: int = 2, h: int = 16, w: int = 16) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    rgb = torch.rand(n, 3, h, w, generator=generator, dtype=torch.float64)
    return rgb_to_lab(rgb)[:, 1:]


def _ab_image(colours: list[tuple[float, float]], counts: list[int]) -> torch.Tensor:
    """A (1, 2, 1, sum(counts)) ab image with each colour repeated `count` times."""
    pixels = [c for c, k in zip(colours, counts, strict=True) for _ in range(k)]
    return torch.tensor(pixels, dtype=torch.float32).T.reshape(1, 2, 1, -1)


def _index_of(bins: ABBins, a: float, b: float) -> int:
    matches = ((bins.centres - torch.tensor([a, b])).abs().sum(dim=1) < 1e-6).nonzero()
    assert len(matches) == 1, (a, b)
    return int(matches[0, 0])


# --- the bins -------------------------------------------------------------------------------


def test_bin_count_shape_and_dtype(bins: ABBins) -> None:
    assert 250 <= bins.num_bins <= 270
    assert bins.num_bins == 261  # as documented for the 64-level cube
    assert bins.centres.shape == (bins.num_bins, 2)
    assert bins.centres.dtype == torch.float32


def test_bins_lie_on_the_step_10_grid_and_are_unique(bins: ABBins, bin_set: set) -> None:
    centres = bins.centres.double()
    assert torch.equal(centres, (centres / STEP).round() * STEP)
    assert len(bin_set) == bins.num_bins
    assert centres.abs().max() <= 110


def test_bins_include_grey_and_primaries(bin_set: set) -> None:
    assert (0, 0) in bin_set
    # red (80.1, 67.2), green (-86.2, 83.2), blue (79.2, -107.9), yellow (-10.7, 94.5)
    for bin_ in [(80, 70), (-90, 80), (80, -110), (-10, 90)]:
        assert bin_ in bin_set, bin_


@pytest.mark.parametrize("far", [(110, 110), (-110, -110), (-110, 110), (110, -110), (100, 100)])
def test_far_out_of_gamut_bins_are_excluded(bin_set: set, skimage_occupied: set, far) -> None:
    assert far not in skimage_occupied  # really out of gamut by the definition
    assert far not in bin_set


def test_bins_are_exactly_those_of_the_definition(bin_set: set, skimage_occupied: set) -> None:
    assert bin_set == skimage_occupied


def test_every_bin_holds_some_srgb_colour(bins: ABBins) -> None:
    # Sample the sRGB cube differently from the library (a 41-level grid plus random colours)
    # and check that every library bin is the rounded ab of at least one sample, bar a sliver.
    levels = torch.linspace(0, 1, 41, dtype=torch.float64)
    cube = torch.stack(torch.meshgrid(levels, levels, levels, indexing="ij")).reshape(1, 3, -1, 1)
    random = torch.rand(1, 3, 100_000, 1, generator=torch.Generator().manual_seed(5)).double()
    ab = rgb_to_lab(torch.cat((cube, random), dim=2))[0, 1:, :, 0].T
    hit = {tuple(p) for p in (torch.round(ab / STEP) * STEP).long().tolist()}
    library = {tuple(p) for p in bins.centres.long().tolist()}
    assert len(library - hit) <= 3
    assert len(hit - library) <= 1  # at most a sliver bin that the 64-level cube misses


def test_in_gamut_bins_returns_a_copy() -> None:
    first = in_gamut_bins()
    first.zero_()
    assert in_gamut_bins().abs().sum() > 0


# --- nearest --------------------------------------------------------------------------------


def test_every_srgb_ab_has_a_bin_within_half_a_diagonal(bins: ABBins) -> None:
    ab = _random_srgb_ab(seed=0, n=4, h=32, w=32)
    nearest = bins.nearest(ab)
    assert nearest.shape == (4, 32, 32)
    assert nearest.dtype == torch.int64
    distances = (bins.centres.double()[nearest].permute(0, 3, 1, 2) - ab).norm(dim=1)
    assert distances.max() <= STEP / 2 * math.sqrt(2) + 1e-6


def test_nearest_of_the_centres_is_themselves(bins: ABBins) -> None:
    ab = bins.centres.T.reshape(1, 2, 1, -1)
    assert torch.equal(bins.nearest(ab).flatten(), torch.arange(bins.num_bins))


def test_nearest_is_the_rounded_grid_point_across_chunks(bins: ABBins) -> None:
    # More pixels than one chunk of the distance computation (65536).
    ab = _random_srgb_ab(seed=1, n=1, h=260, w=260).float()
    nearest = bins.nearest(ab).flatten()
    rounded = (torch.round(ab.double() / STEP) * STEP).permute(0, 2, 3, 1).reshape(-1, 2)
    lookup = {tuple(p): i for i, p in enumerate(bins.centres.long().tolist())}
    in_set = torch.tensor([tuple(p) in lookup for p in rounded.long().tolist()])
    assert in_set.float().mean() > 0.999
    expected = torch.tensor([lookup.get(tuple(p), -1) for p in rounded.long().tolist()])
    assert torch.equal(nearest[in_set], expected[in_set])


# --- soft encoding --------------------------------------------------------------------------


def test_soft_encode_is_a_distribution_on_five_bins(bins: ABBins) -> None:
    ab = _random_srgb_ab(seed=2)
    soft = bins.soft_encode(ab)
    assert soft.shape == (2, bins.num_bins, 16, 16)
    assert soft.dtype == ab.dtype
    assert soft.min() >= 0
    torch.testing.assert_close(soft.sum(dim=1), torch.ones(2, 16, 16, dtype=ab.dtype))
    assert torch.all((soft > 0).sum(dim=1) == SOFT_NEIGHBOURS)
    assert torch.equal(soft.argmax(dim=1), bins.nearest(ab))


def test_sparse_soft_encode_matches_a_hand_computation(bins: ABBins) -> None:
    ab = _random_srgb_ab(seed=3, n=1, h=3, w=4)
    indices, weights = bins.sparse_soft_encode(ab)
    assert indices.shape == weights.shape == (1, SOFT_NEIGHBOURS, 3, 4)
    assert torch.equal(indices[:, 0], bins.nearest(ab))
    centres = bins.centres.double()
    for y in range(3):
        for x in range(4):
            d2 = ((centres - ab[0, :, y, x]) ** 2).sum(dim=1)
            order = torch.argsort(d2)[:SOFT_NEIGHBOURS]
            assert set(indices[0, :, y, x].tolist()) == set(order.tolist())
            gauss = torch.exp(-d2[order] / (2 * SOFT_SIGMA**2))
            expected = dict(zip(order.tolist(), (gauss / gauss.sum()).tolist(), strict=True))
            for k in range(SOFT_NEIGHBOURS):
                q = int(indices[0, k, y, x])
                assert weights[0, k, y, x].item() == pytest.approx(expected[q], abs=1e-9)
            # Sorted by distance: weights do not increase.
            assert torch.all(weights[0, 1:, y, x] <= weights[0, :-1, y, x] + 1e-12)


def test_soft_encode_of_a_centre_peaks_there(bins: ABBins) -> None:
    q = _index_of(bins, 0, 0)
    soft = bins.soft_encode(torch.zeros(1, 2, 1, 1))
    assert int(soft[0, :, 0, 0].argmax()) == q
    # The four neighbours at distance 10 share the rest equally: weight e^-2 each.
    expected_peak = 1 / (1 + 4 * math.exp(-(10**2) / (2 * SOFT_SIGMA**2)))
    assert soft[0, q, 0, 0].item() == pytest.approx(expected_peak, rel=1e-5)


# --- the prior and rebalancing --------------------------------------------------------------


def test_prior_of_a_single_colour_is_one_at_its_bin(bins: ABBins) -> None:
    prior = bins.empirical_prior(_ab_image([(21.0, -32.0)], [50]))
    q = _index_of(bins, 20, -30)
    assert prior.shape == (bins.num_bins,)
    assert prior[q].item() == pytest.approx(1.0)
    assert prior.sum().item() == pytest.approx(1.0)
    assert torch.count_nonzero(prior) == 1


def test_prior_counts_shares(bins: ABBins) -> None:
    prior = bins.empirical_prior(_ab_image([(0.0, 0.0), (40.0, 40.0)], [30, 10]))
    assert prior[_index_of(bins, 0, 0)].item() == pytest.approx(0.75)
    assert prior[_index_of(bins, 40, 40)].item() == pytest.approx(0.25)


def test_smoothed_prior_of_an_interior_delta_is_a_gaussian(bins: ABBins) -> None:
    q = _index_of(bins, 0, 0)
    delta = torch.zeros(bins.num_bins)
    delta[q] = 1
    smoothed = bins.smoothed_prior(delta)
    assert smoothed.sum().item() == pytest.approx(1.0, abs=1e-6)
    assert smoothed.min() >= 0
    # scipy's gaussian_filter truncates at 4 sigma: sigma = 0.5 grid cells -> radius 2 cells.
    offsets = bins.centres.double() - bins.centres[q].double()
    within = (offsets.abs() <= 2 * STEP).all(dim=1)
    expected = torch.exp(-(offsets**2).sum(dim=1) / (2 * PRIOR_SIGMA**2)) * within
    expected = expected / expected.sum()
    torch.testing.assert_close(smoothed.double(), expected, atol=1e-6, rtol=0)


def test_rebalancing_weights_normalisation_and_positivity(bins: ABBins) -> None:
    prior = bins.empirical_prior(_random_srgb_ab(seed=4))
    weights = bins.rebalancing_weights(prior)
    smoothed = bins.smoothed_prior(prior)
    assert weights.shape == (bins.num_bins,)
    assert torch.all(weights > 0)
    assert (smoothed.double() * weights.double()).sum().item() == pytest.approx(1.0, abs=1e-5)
    # w is proportional to 1 / ((1 - lambda) p + lambda / Q), lambda = 0.5.
    unnormalised = 1.0 / (0.5 * smoothed.double() + 0.5 / bins.num_bins)
    ratio = weights.double() / unnormalised
    torch.testing.assert_close(ratio, torch.full_like(ratio, ratio[0].item()), rtol=1e-5, atol=0)


def test_rarer_colours_get_larger_weights(bins: ABBins) -> None:
    common, rare, absent = (0, 0), (60, -40), (-60, 60)
    prior = bins.empirical_prior(_ab_image([common, rare], [90, 10]))
    weights = bins.rebalancing_weights(prior)
    w_common = weights[_index_of(bins, *common)]
    w_rare = weights[_index_of(bins, *rare)]
    w_absent = weights[_index_of(bins, *absent)]
    assert w_common < w_rare < w_absent
    assert w_absent == pytest.approx(weights.max().item())


def test_lambda_one_gives_uniform_weights(bins: ABBins) -> None:
    prior = bins.empirical_prior(_ab_image([(0.0, 0.0), (40.0, 40.0)], [30, 10]))
    weights = bins.rebalancing_weights(prior, lam=1.0)
    torch.testing.assert_close(weights, torch.ones(bins.num_bins), atol=1e-5, rtol=0)


def test_lambda_zero_gives_the_inverse_prior(bins: ABBins) -> None:
    prior = bins.empirical_prior(_random_srgb_ab(seed=6))
    smoothed = bins.smoothed_prior(prior).double()
    assert torch.all(smoothed > 0)  # 512 random colours reach every bin once smoothed
    weights = bins.rebalancing_weights(prior, lam=0.0).double()
    # w = 1 / p, normalised so that sum(p * w) = 1: w = 1 / (Q p).
    expected = 1.0 / (bins.num_bins * smoothed)
    torch.testing.assert_close(weights, expected, rtol=1e-4, atol=0)


# --- decoding -------------------------------------------------------------------------------


@pytest.fixture
def logits(bins: ABBins) -> torch.Tensor:
    generator = torch.Generator().manual_seed(7)
    logits = 2 * torch.randn(2, bins.num_bins, 3, 4, generator=generator, dtype=torch.float64)
    # A clear winner per pixel so that T -> 0 is arg-max to machine precision.
    winners = torch.randint(0, bins.num_bins, (2, 3, 4), generator=generator)
    logits.scatter_(1, winners[:, None], logits.max().item() + 1.0)
    return logits


def test_decode_argmax_returns_the_winning_centre(bins: ABBins, logits: torch.Tensor) -> None:
    ab = bins.decode(logits, "argmax")
    assert ab.shape == (2, 2, 3, 4)
    winners = logits.argmax(dim=1)
    for n in range(2):
        for y in range(3):
            for x in range(4):
                expected = bins.centres[winners[n, y, x]].double()
                torch.testing.assert_close(ab[n, :, y, x], expected)


def test_decode_of_a_one_hot_is_the_centre_for_every_method(bins: ABBins) -> None:
    q = _index_of(bins, 30, -20)
    one_hot = torch.full((1, bins.num_bins, 1, 1), -1e4)
    one_hot[0, q] = 0
    for method in ("argmax", "mean", "annealed"):
        decoded = bins.decode(one_hot, method).flatten()
        torch.testing.assert_close(decoded, torch.tensor([30.0, -20.0]))


def test_annealed_at_tiny_temperature_is_argmax(bins: ABBins, logits: torch.Tensor) -> None:
    annealed = bins.decode(logits, "annealed", temperature=1e-3)
    torch.testing.assert_close(annealed, bins.decode(logits, "argmax"), atol=1e-6, rtol=0)


def _hand_mean(bins: ABBins, logits: torch.Tensor, temperature: float) -> torch.Tensor:
    n, q, h, w = logits.shape
    out = torch.zeros(n, 2, h, w, dtype=logits.dtype)
    centres = bins.centres.double()
    for i in range(n):
        for y in range(h):
            for x in range(w):
                z = logits[i, :, y, x] / temperature
                p = torch.exp(z - z.max())
                p = p / p.sum()
                out[i, :, y, x] = (p[:, None] * centres).sum(dim=0)
    return out


def test_annealed_at_one_is_the_mean(bins: ABBins, logits: torch.Tensor) -> None:
    annealed = bins.decode(logits, "annealed", temperature=1.0)
    mean = bins.decode(logits, "mean")
    torch.testing.assert_close(annealed, mean)
    torch.testing.assert_close(mean, _hand_mean(bins, logits, 1.0))
    # 'mean' ignores any temperature it is given.
    torch.testing.assert_close(bins.decode(logits, "mean", temperature=5.0), mean)


def test_annealed_default_temperature(bins: ABBins, logits: torch.Tensor) -> None:
    assert ANNEALED_T == 0.38
    torch.testing.assert_close(bins.decode(logits), _hand_mean(bins, logits, ANNEALED_T))


def test_decode_keeps_dtype(bins: ABBins, logits: torch.Tensor) -> None:
    for method in ("argmax", "mean", "annealed"):
        assert bins.decode(logits.float(), method).dtype == torch.float32
        assert bins.decode(logits, method).dtype == torch.float64


def test_decode_rejects_bad_method_and_temperature(bins: ABBins, logits: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="decode method"):
        bins.decode(logits, "median")
    for temperature in (0.0, -1.0, float("nan")):
        with pytest.raises(ColorcnnError, match="temperature must be a positive number"):
            bins.decode(logits, "annealed", temperature=temperature)

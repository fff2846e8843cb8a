"""Formulations with every registered model: inputs, outputs, loss, gradients, predictions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.color import rgb2lab

from colorcnn.color import fit_palette, nearest_colour
from colorcnn.color.abbins import ANNEALED_T, ABBins
from colorcnn.color.spaces import (
    AB_SCALE,
    course_rgb,
    lab_to_rgb,
    rgb_to_lab,
    true_lightness,
    unit_rgb,
)
from colorcnn.errors import ColorcnnError
from colorcnn.formulations import build_formulation, list_formulations
from colorcnn.formulations.colour import ABBinsClassification, ABRegression
from colorcnn.models import create_model, list_models

ALL_MODELS = list_models()
FORMULATIONS = tuple(list_formulations("colorize"))  # every registered one is tested
N, H, W = 2, 32, 32  # 32: the deepest registered model pools five times


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def course_images() -> torch.Tensor:
    """Two 16x16 course-scale images (uint8 / 256): smooth colour ramps with some noise."""
    generator = torch.Generator().manual_seed(0)
    ys, xs = torch.meshgrid(torch.linspace(0, 1, H), torch.linspace(0, 1, W), indexing="ij")
    base = torch.rand(N, 3, 1, 1, generator=generator)
    slopes = torch.rand(N, 3, 2, generator=generator) - 0.5
    ramp = base + slopes[..., 0, None, None] * ys + slopes[..., 1, None, None] * xs
    noisy = ramp + 0.1 * torch.randn(N, 3, H, W, generator=generator)
    return (noisy.clamp(0, 1) * 255).round() / 256


@pytest.fixture(scope="module")
def palette(course_images: torch.Tensor) -> torch.Tensor:
    return fit_palette(course_images, num_colours=6, seed=0)


@pytest.fixture(scope="module")
def formulations(palette: torch.Tensor, course_images: torch.Tensor) -> dict:
    return {
        name: build_formulation(name, palette, train_rgb=course_images) for name in FORMULATIONS
    }


def _in_gamut(lab: torch.Tensor, margin: float = 1e-4) -> torch.Tensor:
    """(N, H, W) mask of the Lab pixels whose unclipped sRGB lies inside [0, 1]."""
    raw = lab_to_rgb(lab.double(), clip=False)
    return ((raw >= -margin) & (raw <= 1 + margin)).all(dim=1)


def test_the_registry_holds_the_course_and_field_formulations() -> None:
    assert set(FORMULATIONS) == {"palette-rgb", "ab-bins", "ab-regression", "rgb-regression"}
    assert set(list_formulations("superres")) == {"superres-palette", "superres-rgb", "superres-y"}
    assert list_formulations(pattern="superres-*") == list_formulations("superres")


def test_an_unknown_or_repeated_formulation_is_refused() -> None:
    from colorcnn.formulations import formulation_class, register_formulation

    with pytest.raises(ColorcnnError, match="unknown target 'lab-magic'; expected one of"):
        formulation_class("lab-magic")
    with pytest.raises(ValueError, match="registered twice"):
        register_formulation(formulation_class("ab-bins"))


def test_every_formulation_rebuilds_itself_from_its_description(palette, course_images) -> None:
    from colorcnn.formulations import formulation_class

    for formulation in _every_formulation(palette, course_images):
        described = formulation.describe()
        rebuilt = formulation_class(described["name"]).from_description(palette, described)
        assert type(rebuilt) is type(formulation)
        assert rebuilt.describe() == described
        assert rebuilt.out_channels == formulation.out_channels


# Upscaling networks learn superres-y only; tests/test_superres.py pairs them with it.
SAME_SIZE_MODELS = [name for name in ALL_MODELS if create_model(name).output_scale == 1]


@pytest.mark.parametrize("target", FORMULATIONS)
@pytest.mark.parametrize("model_name", SAME_SIZE_MODELS)
def test_model_and_formulation_work_together(
    model_name: str, target: str, formulations: dict, course_images: torch.Tensor
) -> None:
    torch.manual_seed(0)
    formulation = formulations[target]
    rgb = course_images
    model = create_model(model_name, out_channels=formulation.out_channels, in_channels=1)

    inputs = formulation.inputs(rgb)
    assert inputs.shape == (N, 1, H, W)
    assert inputs.dtype == torch.float32
    assert inputs.min() >= 0 and inputs.max() <= 1

    outputs = model(inputs)
    assert outputs.shape == (N, formulation.out_channels, H, W)
    assert torch.isfinite(outputs).all()

    loss = formulation.loss(outputs, formulation.targets(rgb))
    assert loss.ndim == 0
    assert torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)

    outputs = outputs.detach()
    predicted = formulation.predict_rgb(outputs, inputs)
    assert predicted.shape == (N, 3, H, W)
    assert predicted.min() >= 0 and predicted.max() <= 1
    assert torch.isfinite(predicted).all()

    # With the true lightness, the prediction keeps it wherever its colour is in gamut.
    lightness = true_lightness(rgb)
    with_l = formulation.predict_rgb(outputs, inputs, lightness)
    assert with_l.shape == (N, 3, H, W)
    assert with_l.min() >= 0 and with_l.max() <= 1
    if target in ("ab-bins", "ab-regression"):
        chroma = formulation.predict_ab(outputs)
        assert chroma.shape == (N, 2, H, W)
    else:
        chroma = rgb_to_lab(predicted)[:, 1:]
    mask = _in_gamut(torch.cat((lightness, chroma), dim=1))
    assert mask.sum() >= 16  # the check below is not vacuous (10-95 % of pixels here)
    if target == "ab-bins":  # the annealed mean of untrained logits is a pale colour
        assert mask.float().mean() > 0.5
    got = rgb_to_lab(with_l)[:, 0]
    torch.testing.assert_close(got[mask], lightness[:, 0][mask], atol=0.05, rtol=0)

    indices = formulation.colour_indices(outputs, inputs)
    assert indices.shape == (N, H, W)
    assert indices.dtype == torch.int64
    assert indices.min() >= 0 and indices.max() < len(formulation.palette)


@pytest.mark.parametrize("target", FORMULATIONS)
@pytest.mark.parametrize("own_picture", [True, False])
def test_scoring_decodes_what_the_separate_calls_give(
    target: str, own_picture: bool, formulations: dict, course_images: torch.Tensor
) -> None:
    """Evaluation decodes each batch once for the accuracy and both pictures."""
    formulation = formulations[target]
    inputs = formulation.inputs(course_images)
    lightness = true_lightness(course_images)
    outputs = _logits(formulation.out_channels)
    indices, predicted, own = formulation.decode_for_scoring(
        outputs, inputs, lightness, own_picture=own_picture
    )
    assert torch.equal(indices, formulation.colour_indices(outputs, inputs))
    assert torch.equal(predicted, formulation.predict_rgb(outputs, inputs, lightness))
    if own_picture and formulation.scores_own_picture:
        assert torch.equal(own, formulation.predict_rgb(outputs, inputs))
    else:
        assert own is None


def _every_formulation(palette: torch.Tensor, course_images: torch.Tensor) -> list:
    colour = [
        build_formulation(name, palette, train_rgb=course_images)
        for name in list_formulations("colorize")
    ]
    return colour + [
        build_formulation(name, palette, scale=2) for name in list_formulations("superres")
    ]


def test_every_formulation_draws_its_picture_rows(palette, course_images) -> None:
    for formulation in _every_formulation(palette, course_images):
        inputs = formulation.inputs(course_images)
        outputs = _logits(formulation.out_channels)
        rows = formulation.picture_rows(outputs, inputs, course_images)
        assert len(rows) >= 3 and "prediction" in rows, formulation.name
        assert torch.equal(rows["prediction"], formulation.predict_rgb(outputs, inputs))
        for label, images in rows.items():
            assert images.shape[0] == N and images.shape[-2:] == (H, W), (formulation.name, label)
            assert images.min() >= 0 and images.max() <= 1, (formulation.name, label)
        if formulation.name in ("palette-rgb", "superres-palette"):
            truth = rows["ground truth\n(palette)"]
            colours = unit_rgb(palette)  # every truth pixel is one of the palette's colours
            distance = (truth.permute(0, 2, 3, 1).reshape(-1, 1, 3) - colours).abs().sum(-1)
            assert distance.min(dim=1).values.max() < 1e-6
        if formulation.name == "palette-rgb":  # the course's rows and the true lightness
            joined = rows["prediction,\ntrue lightness"]
            expected = true_lightness(course_images)
            assert (rgb_to_lab(joined)[:, :1] - expected).abs().median() < 0.5


# --- inputs and targets ---------------------------------------------------------------------


def test_lab_inputs_are_true_lightness_over_100(formulations: dict, course_images) -> None:
    unit = course_images.double() * 256 / 255
    expected_lab = rgb2lab(unit.permute(0, 2, 3, 1).numpy()).transpose(0, 3, 1, 2)
    for name in ("ab-bins", "ab-regression"):
        formulation = formulations[name]
        inputs = formulation.inputs(course_images)
        np.testing.assert_allclose(inputs.numpy(), expected_lab[:, :1] / 100, atol=1e-5)
        targets = formulation.targets(course_images)
        np.testing.assert_allclose(targets.numpy(), expected_lab[:, 1:], atol=2e-3)


def test_course_inputs_are_the_grey_mean(formulations: dict, course_images) -> None:
    for name in ("palette-rgb", "rgb-regression"):
        inputs = formulations[name].inputs(course_images)
        torch.testing.assert_close(inputs, course_images.mean(dim=1, keepdim=True))


def test_palette_targets_are_nearest_palette_indices(formulations: dict, course_images) -> None:
    formulation = formulations["palette-rgb"]
    targets = formulation.targets(course_images)
    assert targets.shape == (N, H, W)
    palette = formulation.palette
    distances = ((course_images[:, None] - palette[None, :, :, None, None]) ** 2).sum(dim=2)
    assert torch.equal(targets, distances.argmin(dim=1))
    assert formulation.out_channels == len(palette) == 6


def test_unit_and_course_scales() -> None:
    course = torch.tensor([0.0, 128 / 256, 255 / 256])
    torch.testing.assert_close(unit_rgb(course), torch.tensor([0.0, 128 / 255, 1.0]))
    torch.testing.assert_close(course_rgb(unit_rgb(course)), course)


# --- losses ---------------------------------------------------------------------------------


def _logits(channels: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(N, channels, H, W, generator=torch.Generator().manual_seed(seed))


def _dense_soft_cross_entropy(formulation, logits, ab, class_weights) -> torch.Tensor:
    soft = formulation.bins.soft_encode(ab)  # (N, Q, H, W)
    per_pixel = -(soft * F.log_softmax(logits, dim=1)).sum(dim=1)
    if class_weights is not None:
        per_pixel = per_pixel * class_weights[soft.argmax(dim=1)]
    return per_pixel.mean()


@pytest.mark.parametrize("rebalance", [True, False])
def test_ab_bins_loss_is_the_dense_soft_cross_entropy(
    palette: torch.Tensor, course_images: torch.Tensor, rebalance: bool
) -> None:
    formulation = build_formulation(
        "ab-bins", palette, train_rgb=course_images, rebalance=rebalance
    )
    assert isinstance(formulation, ABBinsClassification)
    assert (formulation.class_weights is not None) == rebalance
    logits = _logits(formulation.out_channels)
    ab = formulation.targets(course_images)
    expected = _dense_soft_cross_entropy(formulation, logits, ab, formulation.class_weights)
    torch.testing.assert_close(formulation.loss(logits, ab), expected)
    if rebalance:  # the weights do change the loss
        plain = _dense_soft_cross_entropy(formulation, logits, ab, None)
        assert not torch.isclose(expected, plain)


def test_ab_bins_class_weights_are_the_rebalancing_of_the_prior(
    palette: torch.Tensor, course_images: torch.Tensor
) -> None:
    formulation = build_formulation("ab-bins", palette, train_rgb=course_images)
    bins = formulation.bins
    ab = rgb_to_lab(unit_rgb(course_images))[:, 1:]
    expected = bins.rebalancing_weights(bins.empirical_prior(ab))
    torch.testing.assert_close(formulation.class_weights, expected)
    assert formulation.temperature == ANNEALED_T


def test_ab_bins_needs_training_images_to_rebalance(palette: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="training images"):
        build_formulation("ab-bins", palette)


def test_ab_regression_losses(palette: torch.Tensor, course_images: torch.Tensor) -> None:
    outputs = 0.3 * _logits(2)
    l1 = build_formulation("ab-regression", palette, regression_loss="l1")
    ab = l1.targets(course_images)
    torch.testing.assert_close(l1.loss(outputs, ab), F.l1_loss(outputs, ab / 110))
    huber = build_formulation("ab-regression", palette)
    assert huber.regression_loss == "huber"
    torch.testing.assert_close(
        huber.loss(outputs, ab), F.huber_loss(outputs, ab / AB_SCALE, delta=0.1)
    )
    assert AB_SCALE == 110.0
    # A perfect prediction has zero loss and decodes to the target ab.
    perfect = ab / AB_SCALE
    assert l1.loss(perfect, ab).item() == pytest.approx(0.0, abs=1e-7)
    torch.testing.assert_close(l1.predict_ab(perfect), ab)


def test_ab_regression_rejects_unknown_losses(palette: torch.Tensor) -> None:
    with pytest.raises(ColorcnnError, match="huber, l1, mse"):
        ABRegression(palette, "l2")
    with pytest.raises(ColorcnnError):
        build_formulation("ab-regression", palette, regression_loss="squared")


def test_mse_loss_is_the_mean_square_in_scaled_units(palette: torch.Tensor) -> None:
    mse = build_formulation("ab-regression", palette, regression_loss="mse")
    targets = torch.full((1, 2, 2, 2), 22.0)  # 0.2 in ab / 110 units
    outputs = torch.zeros(1, 2, 2, 2)
    assert mse.loss(outputs, targets).item() == pytest.approx(0.04)
    assert mse.describe()["regression_loss"] == "mse"


def test_course_losses(formulations: dict, course_images: torch.Tensor) -> None:
    palette_rgb = formulations["palette-rgb"]
    logits = _logits(palette_rgb.out_channels)
    targets = palette_rgb.targets(course_images)
    torch.testing.assert_close(palette_rgb.loss(logits, targets), F.cross_entropy(logits, targets))
    regression = formulations["rgb-regression"]
    outputs = torch.rand(N, 3, H, W)
    torch.testing.assert_close(
        regression.loss(outputs, regression.targets(course_images)),
        F.mse_loss(outputs, course_images),
    )


@pytest.mark.parametrize("target", ["palette-rgb", "ab-bins"])
def test_class_losses_are_the_same_on_channels_last_outputs(
    formulations: dict, course_images: torch.Tensor, target: str
) -> None:
    """Channels-last logits take a faster path (softmax over the last dimension of a
    permuted view); the loss and its gradient must not change."""
    formulation = formulations[target]
    targets = formulation.training_targets(course_images)
    logits = _logits(formulation.out_channels)
    results = []
    for layout in (torch.contiguous_format, torch.channels_last):
        given = logits.clone().contiguous(memory_format=layout).requires_grad_(True)
        loss = formulation.loss(given, targets)
        loss.backward()
        results.append((loss, given.grad))
    torch.testing.assert_close(results[1][0], results[0][0])
    torch.testing.assert_close(results[1][1], results[0][1])
    assert results[1][1].is_contiguous(memory_format=torch.channels_last)


# --- predictions ----------------------------------------------------------------------------


def test_perfect_predictions_rebuild_the_image(formulations: dict, course_images) -> None:
    unit = unit_rgb(course_images)
    regression = formulations["rgb-regression"]
    inputs = regression.inputs(course_images)
    torch.testing.assert_close(regression.predict_rgb(course_images, inputs), unit)

    ab_regression = formulations["ab-regression"]
    inputs = ab_regression.inputs(course_images)
    ab = ab_regression.targets(course_images)
    rebuilt = ab_regression.predict_rgb(ab / AB_SCALE, inputs)
    torch.testing.assert_close(rebuilt, unit, atol=1e-3, rtol=0)


def test_palette_prediction_is_the_palette_colour(formulations: dict, course_images) -> None:
    formulation = formulations["palette-rgb"]
    targets = formulation.targets(course_images)
    logits = F.one_hot(targets, formulation.out_channels).permute(0, 3, 1, 2).float()
    inputs = formulation.inputs(course_images)
    predicted = formulation.predict_rgb(logits, inputs)
    expected = unit_rgb(formulation.palette[targets].permute(0, 3, 1, 2))
    torch.testing.assert_close(predicted, expected)
    assert torch.equal(formulation.colour_indices(logits, inputs), targets)


def test_colour_indices_snap_predictions_to_the_palette(formulations: dict, course_images) -> None:
    formulation = formulations["rgb-regression"]
    outputs = torch.rand(N, 3, H, W, generator=torch.Generator().manual_seed(2))
    inputs = formulation.inputs(course_images)
    expected = nearest_colour(course_rgb(unit_rgb(outputs)), formulation.palette)[:, 0]
    assert torch.equal(formulation.colour_indices(outputs, inputs), expected)


def test_lab_prediction_keeps_the_input_lightness(formulations: dict, course_images) -> None:
    formulation = formulations["ab-bins"]
    inputs = formulation.inputs(course_images)
    logits = _logits(formulation.out_channels)
    predicted = formulation.predict_rgb(logits, inputs)
    lab = torch.cat((inputs * 100, formulation.predict_ab(logits)), dim=1)
    mask = _in_gamut(lab)
    assert mask.float().mean() > 0.5
    got = rgb_to_lab(predicted)[:, 0]
    torch.testing.assert_close(got[mask], 100 * inputs[:, 0][mask], atol=0.05, rtol=0)


# --- building and describing ----------------------------------------------------------------


def test_unknown_formulation_is_a_colorcnn_error(palette: torch.Tensor) -> None:
    with pytest.raises(ColorcnnError, match="unknown target 'lab-magic'"):
        build_formulation("lab-magic", palette)


def test_build_gives_each_name(formulations: dict) -> None:
    for name, formulation in formulations.items():
        assert formulation.name == name
        assert formulation.describe()["name"] == name
    assert formulations["ab-regression"].out_channels == 2
    assert formulations["rgb-regression"].out_channels == 3
    assert formulations["ab-bins"].out_channels == formulations["ab-bins"].bins.num_bins


def test_ab_bins_describe_round_trips(formulations: dict, palette: torch.Tensor) -> None:
    original = formulations["ab-bins"]
    described = original.describe()
    assert described["temperature"] == ANNEALED_T
    rebuilt = build_formulation("ab-bins", palette, described=described)
    assert isinstance(rebuilt, ABBinsClassification)
    assert torch.equal(rebuilt.bins.centres, original.bins.centres)
    assert torch.equal(rebuilt.class_weights, original.class_weights)
    assert rebuilt.out_channels == original.out_channels
    logits = _logits(original.out_channels)
    ab = torch.zeros(N, 2, H, W)
    assert torch.equal(rebuilt.loss(logits, ab), original.loss(logits, ab))


def test_described_ab_bins_take_the_given_temperature(formulations: dict, palette) -> None:
    described = formulations["ab-bins"].describe()
    rebuilt = build_formulation("ab-bins", palette, described=described, temperature=1.0)
    assert rebuilt.temperature == 1.0
    logits = _logits(rebuilt.out_channels)
    torch.testing.assert_close(rebuilt.predict_ab(logits), rebuilt.bins.decode(logits, "mean"))


def test_ab_bins_describe_without_weights(palette: torch.Tensor) -> None:
    plain = build_formulation("ab-bins", palette, rebalance=False)
    described = plain.describe()
    assert described["class_weights"] is None
    rebuilt = build_formulation("ab-bins", palette, described=described)
    assert rebuilt.class_weights is None
    assert torch.equal(rebuilt.bins.centres, plain.bins.centres)


def test_ab_regression_describe_round_trips(palette: torch.Tensor) -> None:
    l1 = build_formulation("ab-regression", palette, regression_loss="l1")
    rebuilt = build_formulation("ab-regression", palette, described=l1.describe())
    assert rebuilt.regression_loss == "l1"


def test_chroma_gain_scales_ab_regression_and_only_it(palette: torch.Tensor) -> None:
    from colorcnn.errors import ColorcnnError

    outputs = torch.full((1, 2, 4, 4), 0.1)
    plain = build_formulation("ab-regression", palette)
    vivid = build_formulation("ab-regression", palette, chroma_gain=1.5)
    torch.testing.assert_close(vivid.predict_ab(outputs), 1.5 * plain.predict_ab(outputs))
    rebuilt = build_formulation("ab-regression", palette, described=vivid.describe())
    assert rebuilt.chroma_gain == 1.5
    with pytest.raises(ColorcnnError, match="chroma_gain applies to ab-regression"):
        build_formulation("palette-rgb", palette, chroma_gain=1.2)
    with pytest.raises(ColorcnnError, match="chroma_gain must be a positive"):
        build_formulation("ab-regression", palette, chroma_gain=0.0)


def test_the_colour_prior_is_the_same_in_chunks(monkeypatch, course_images: torch.Tensor) -> None:
    from colorcnn.formulations import base, colour

    bins = ABBins.in_gamut()
    whole = bins.empirical_prior(rgb_to_lab(unit_rgb(course_images))[:, 1:])
    monkeypatch.setattr(base, "CHUNK_PIXELS", H * W)  # one image per chunk
    chunked = colour._colour_prior(bins, course_images)
    assert torch.allclose(chunked, whole, atol=1e-6)

"""Colour hints: parsing, rendering at the working size, simulated hints for training, and
a network that takes them."""

from __future__ import annotations

import pytest
import torch

from colorcnn.color.hints import (
    DEFAULT_WORKING_PATCH,
    HINT_CHANNELS,
    MAX_PATCH,
    Hint,
    parse_colour,
    pool_hints,
    render_hints,
    sample_hints_from_truth,
    simulate_hints,
)
from colorcnn.color.spaces import AB_SCALE, rgb_to_lab
from colorcnn.errors import ColorcnnError
from colorcnn.models import create_model


def test_hex_colours_parse_and_bad_ones_say_what_was_expected() -> None:
    assert parse_colour("#c03020") == (192, 48, 32)
    assert parse_colour("C03020") == (192, 48, 32)
    assert parse_colour("#f00") == (255, 0, 0)
    for bad in ("red", "#12345", "#gg0000", ""):
        with pytest.raises(ColorcnnError, match="is not a hex colour; expected e.g. '#c03020'"):
            parse_colour(bad)


def test_a_hint_keeps_only_its_colours_chroma() -> None:
    hint = Hint(10, 5, "#c03020")
    assert hint.colour == (192, 48, 32) and hint.hex == "#c03020"
    lab = rgb_to_lab(torch.tensor([192, 48, 32], dtype=torch.float32).view(1, 3, 1, 1) / 255)
    torch.testing.assert_close(hint.ab(), lab[0, 1:, 0, 0])
    with pytest.raises(ColorcnnError, match="hint size must be a positive"):
        Hint(0, 0, "#ffffff", size=0)
    with pytest.raises(ColorcnnError, match="is outside the 20x10 px image"):
        Hint(20, 3, "#ffffff").check_inside(20, 10)


def test_hints_render_as_squares_of_chroma_with_a_mask() -> None:
    red, blue = Hint(100, 50, "#c03020"), Hint(0, 0, "#2040c0", size=40)
    maps = render_hints([red, blue], image_size=(200, 100), working_shape=(20, 40))
    assert maps.shape == (1, HINT_CHANNELS, 20, 40)
    mask = maps[0, 2]
    # The red point: a DEFAULT_WORKING_PATCH square around (x 20, y 10) of the working picture.
    assert mask[9:12, 19:22].eq(1).all() and mask[9:12, 19:22].numel() == DEFAULT_WORKING_PATCH**2
    torch.testing.assert_close(maps[0, :2, 10, 20], red.ab() / AB_SCALE)
    # The blue one: 40 input px are 8 working px around the corner, 5 x 5 of them inside.
    assert mask[:5, :5].eq(1).all() and mask.sum() == DEFAULT_WORKING_PATCH**2 + 5 * 5
    torch.testing.assert_close(maps[0, :2, 0, 0], blue.ab() / AB_SCALE)
    assert maps[0, :, 15:, 30:].eq(0).all()  # elsewhere: no hint, not "grey"


def test_simulated_hints_follow_the_papers_protocol() -> None:
    ab = torch.randn(400, 2, 32, 32) * 30
    hints = simulate_hints(ab, torch.Generator().manual_seed(0))
    assert hints.shape == (400, HINT_CHANNELS, 32, 32)
    hinted = hints[:, 2].flatten(1).any(dim=1)
    share_without = 1 - hinted.float().mean().item()
    assert 0.07 < share_without < 0.19  # about 1/8 of the images get no hint at all
    # Each hinted pixel carries a patch's mean true chroma, so values stay in range.
    assert hints[:, :2].abs().max() <= ab.abs().max() / AB_SCALE
    # The same seed gives the same hints.
    again = simulate_hints(ab, torch.Generator().manual_seed(0))
    assert torch.equal(hints, again)


def test_a_simulated_patch_carries_its_mean_true_chroma() -> None:
    ab = torch.zeros(1, 2, 16, 16)
    ab[0, 0] = 40.0  # one flat colour: every patch's mean is the colour itself
    ab[0, 1] = -20.0
    hints = simulate_hints(ab, torch.Generator().manual_seed(3), stop_probability=0.0,
                           max_points=5)  # fmt: skip
    mask = hints[0, 2].bool()
    assert mask.any() and mask.sum() <= 5 * MAX_PATCH**2
    torch.testing.assert_close(hints[0, 0][mask], torch.full((int(mask.sum()),), 40 / AB_SCALE))
    torch.testing.assert_close(hints[0, 1][mask], torch.full((int(mask.sum()),), -20 / AB_SCALE))


def test_measuring_hints_are_seeded_squares_of_the_truth() -> None:
    ab = torch.randn(3, 2, 24, 24) * 20
    none = sample_hints_from_truth(ab, 0, 6, torch.Generator().manual_seed(0))
    assert none.eq(0).all()
    ten = sample_hints_from_truth(ab, 10, 6, torch.Generator().manual_seed(0))
    assert torch.equal(ten, sample_hints_from_truth(ab, 10, 6, torch.Generator().manual_seed(0)))
    covered = ten[:, 2].flatten(1).sum(dim=1)
    assert (covered >= 36).all() and (covered <= 360).all()


def test_pooled_hints_keep_the_mean_colour_and_the_share() -> None:
    hints = torch.zeros(1, 3, 4, 4)
    hints[0, :2, 0, 0] = torch.tensor([0.5, -0.25])
    hints[0, 2, 0, 0] = 1.0
    pooled = pool_hints(hints, (2, 2))
    torch.testing.assert_close(pooled[0, :2, 0, 0], torch.tensor([0.5, -0.25]))
    assert pooled[0, 2, 0, 0] == pytest.approx(0.25)
    assert pooled[0, :, 1, 1].eq(0).all()


def test_the_pretrained_encoder_model_takes_hints_and_starts_as_without() -> None:
    torch.manual_seed(0)
    plain = create_model("efficient_unet", out_channels=2).eval()
    hinted = create_model("efficient_unet", out_channels=2, in_channels=1 + HINT_CHANNELS).eval()
    assert hinted.takes_hints and not plain.takes_hints
    # Copied where the shapes agree, the hint weights zero: the same function as before.
    own = hinted.state_dict()
    for name, value in plain.state_dict().items():
        target = own[name]
        target.zero_()
        target[tuple(slice(0, size) for size in value.shape)] = value
    hinted.load_state_dict(own)
    lightness = torch.rand(2, 1, 64, 64)
    hints = torch.zeros(2, HINT_CHANNELS, 64, 64)
    hints[:, :, 10:14, 10:14] = torch.tensor([0.3, -0.2, 1.0]).view(1, 3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(
            hinted(torch.cat((lightness, hints), dim=1)), plain(lightness), rtol=1e-4, atol=1e-5
        )
    with pytest.raises(ValueError, match="or the lightness and colour hints"):
        create_model("efficient_unet", in_channels=3)


PALETTE = torch.linspace(0, 0.99, 18).reshape(6, 3)


def _course_images(count: int = 2, side: int = 16) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    return (torch.rand(count, 3, side, side, generator=generator) * 255).round() / 256


@pytest.mark.parametrize("name", ["ab-regression", "ab-bins"])
def test_chroma_formulations_take_hints_and_describe_them(name: str) -> None:
    from colorcnn.formulations import build_formulation, formulation_class

    rgb = _course_images()
    formulation = build_formulation(name, PALETTE, train_rgb=rgb, hints=True)
    assert formulation.takes_hints and formulation.in_channels == 1 + HINT_CHANNELS
    inputs = formulation.inputs(rgb)
    assert inputs.shape == (2, 4, 16, 16) and inputs[:, 1:].eq(0).all()  # automatic: none
    described = formulation.describe()
    assert described["hints"] is True
    assert formulation_class(name).from_description(PALETTE, described).takes_hints
    plain = build_formulation(name, PALETTE, train_rgb=rgb)
    assert "hints" not in plain.describe() and plain.in_channels == 1  # as before hints
    assert torch.equal(plain.inputs(rgb), inputs[:, :1])


@pytest.mark.parametrize("name", ["ab-regression", "ab-bins"])
def test_a_training_batch_gets_hints_of_its_own_truth(name: str) -> None:
    from colorcnn.formulations import build_formulation

    # One flat colour per image: every patch's mean chroma is each pixel's own.
    rgb = _course_images(8)[:, :, :1, :1].expand(-1, -1, 16, 16).contiguous()
    formulation = build_formulation(name, PALETTE, train_rgb=rgb, hints=True)
    inputs, targets = formulation.inputs(rgb), formulation.training_targets(rgb)
    batch = formulation.prepare_batch(inputs, targets, torch.Generator().manual_seed(0))
    assert torch.equal(batch[:, :1], inputs[:, :1])  # the lightness is untouched
    mask = batch[:, 3].bool()
    assert mask.any()
    truth = formulation.targets(rgb) / AB_SCALE  # (N, 2, H, W)
    # A hinted pixel carries the true chroma (ab-bins' packed targets give it back to
    # within a bin: 10 ab units apart).
    error = (batch[:, 1:3] - truth).abs().permute(1, 0, 2, 3)[:, mask]
    assert error.max() < (1e-5 if name == "ab-regression" else 10 / AB_SCALE)
    again = formulation.prepare_batch(inputs, targets, torch.Generator().manual_seed(0))
    assert torch.equal(batch, again)
    lightness_only = build_formulation(name, PALETTE, train_rgb=rgb)
    assert lightness_only.prepare_batch(inputs[:, :1], targets, torch.Generator()) is not None


def test_ab_bins_recovers_the_chroma_of_its_packed_targets() -> None:
    from colorcnn.formulations import build_formulation

    rgb = _course_images(4)
    formulation = build_formulation("ab-bins", PALETTE, train_rgb=rgb)
    recovered = formulation.training_ab(formulation.training_targets(rgb))
    truth = formulation.targets(rgb)
    assert (recovered - truth).abs().mean() < 5.0  # bins are 10 ab units apart


def test_hints_are_refused_where_nothing_predicts_chroma() -> None:
    from colorcnn.formulations import build_formulation

    with pytest.raises(ColorcnnError, match="hints apply to ab-bins and ab-regression"):
        build_formulation("palette-rgb", PALETTE, hints=True)
    plain = build_formulation("ab-regression", PALETTE)
    with pytest.raises(ColorcnnError, match="trained without colour hints"):
        plain.with_hints(torch.zeros(1, 1, 4, 4), torch.zeros(1, 3, 4, 4))


def test_a_hint_spreads_over_its_own_surface_and_stops_at_an_edge() -> None:
    from colorcnn.color.hints import blend_hints

    lightness = torch.full((1, 1, 32, 64), 30.0)
    lightness[..., 32:] = 70.0  # two surfaces side by side, an edge at x = 32
    hints = torch.zeros(1, HINT_CHANNELS, 32, 64)
    hints[0, :2, 15:18, 20:23] = torch.tensor([0.4, -0.2]).view(2, 1, 1)  # on the dark one
    hints[0, 2, 15:18, 20:23] = 1.0
    network = torch.zeros(1, 2, 32, 64)  # a network that says grey everywhere
    blended = blend_hints(network, hints, lightness)
    torch.testing.assert_close(blended[0, :, 16, 21], torch.tensor([0.4, -0.2]))  # kept
    assert blended[0, 0, 16, 8] > 0.3  # spread over its own surface, 13 px away
    assert blended[0, 0, 16, 40].abs() < 0.01  # not across the edge, 19 px away
    assert blended[0, 0, 0, 63].abs() < 0.01


def test_without_hints_the_networks_colour_is_left_alone() -> None:
    from colorcnn.color.hints import blend_hints

    network = torch.randn(2, 2, 8, 8)
    assert blend_hints(network, torch.zeros(2, HINT_CHANNELS, 8, 8), torch.rand(2, 1, 8, 8)) is (
        network
    )


def test_decoding_with_hints_spreads_them_and_describes_how() -> None:
    from colorcnn.formulations import build_formulation, formulation_class

    formulation = build_formulation("ab-regression", PALETTE, hints=True)
    described = formulation.describe()
    assert set(described["propagation"]) == {"reach", "lightness_sigma", "strength"}
    rebuilt = formulation_class("ab-regression").from_description(
        PALETTE, {**described, "propagation": {**described["propagation"], "strength": 1.0}}
    )
    assert rebuilt.propagation["strength"] == 1.0
    inputs = torch.zeros(1, 4, 16, 16)
    inputs[:, 0] = 0.5  # L 50 everywhere
    inputs[0, 1:3, 4:7, 4:7] = torch.tensor([0.3, 0.1]).view(2, 1, 1)
    inputs[0, 3, 4:7, 4:7] = 1.0
    outputs = torch.zeros(1, 2, 16, 16)
    chroma = formulation.predict_chroma(outputs, inputs)
    torch.testing.assert_close(chroma[0, :, 5, 5], torch.tensor([0.3, 0.1]) * AB_SCALE)
    assert formulation.predict_chroma(outputs, inputs[:, :1].expand(-1, 4, -1, -1) * 0).eq(0).all()

"""The k-means palette and the course's nearest-centre targets."""

from __future__ import annotations

import pytest
import torch

from colorcnn.color.palette import fit_palette, nearest_colour, palette_image
from colorcnn.errors import ColorcnnError


def _four_colour_images() -> torch.Tensor:
    """Images made of four flat colours with a little noise: k-means must find them."""
    generator = torch.Generator().manual_seed(0)
    colours = torch.tensor([[0.9, 0.1, 0.1], [0.1, 0.8, 0.2], [0.2, 0.2, 0.9], [0.9, 0.9, 0.8]])
    indices = torch.randint(0, 4, (6, 16, 16), generator=generator)
    images = colours[indices].permute(0, 3, 1, 2)
    return images + 0.01 * torch.randn(images.shape, generator=generator)


def test_palette_is_deterministic_for_a_seed() -> None:
    images = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    first = fit_palette(images, num_colours=6, seed=3)
    second = fit_palette(images, num_colours=6, seed=3)
    assert torch.equal(first, second)
    assert first.shape == (6, 3)


def test_palette_finds_the_colours_that_are_there() -> None:
    palette = fit_palette(_four_colour_images(), num_colours=4, seed=0)
    expected = torch.tensor([[0.9, 0.1, 0.1], [0.1, 0.8, 0.2], [0.2, 0.2, 0.9], [0.9, 0.9, 0.8]])
    for colour in expected:
        assert (palette - colour).norm(dim=1).min() < 0.02


def test_palette_samples_large_inputs_and_stays_close() -> None:
    images = _four_colour_images()
    sampled = fit_palette(images, num_colours=4, seed=0, sample_pixels=500)
    full = fit_palette(images, num_colours=4, seed=0, sample_pixels=None)
    assert torch.allclose(sampled, full, atol=0.01)


def test_nearest_colour_on_hand_made_pixels() -> None:
    palette = torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    pixels = torch.tensor(
        [[0.1, 0.1, 0.1], [0.9, 0.8, 0.95], [0.7, 0.2, 0.1], [0.45, 0.45, 0.45]]
    )  # (4, 3) -> one image of 1 x 4 pixels
    rgb = pixels.T.reshape(1, 3, 1, 4)
    targets = nearest_colour(rgb, palette)
    assert targets.shape == (1, 1, 1, 4)
    assert targets.dtype == torch.int64
    assert targets.flatten().tolist() == [0, 1, 2, 0]


def _brute_force_nearest(rgb: torch.Tensor, palette: torch.Tensor) -> torch.Tensor:
    pixels = rgb.permute(0, 2, 3, 1).reshape(-1, 3)
    distances = ((pixels[:, None, :] - palette[None, :, :]) ** 2).sum(dim=-1)
    return distances.argmin(dim=1).reshape(rgb.shape[0], *rgb.shape[2:]).unsqueeze(1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_nearest_colour_equals_the_brute_force_answer(dtype) -> None:
    generator = torch.Generator().manual_seed(3)
    rgb = (torch.randint(0, 256, (40, 3, 16, 16), generator=generator) / 256).to(dtype)
    palette = torch.rand(24, 3, generator=generator).to(dtype)
    assert torch.equal(nearest_colour(rgb, palette), _brute_force_nearest(rgb, palette))


def test_nearest_colour_tells_apart_colours_a_hair_apart() -> None:
    # The fast ranking's rounding would confuse these; each colour must still map to itself.
    # (Without the re-check, 49 of these 256 came back as their neighbour.)
    generator = torch.Generator().manual_seed(4)
    base = torch.rand(128, 3, generator=generator)
    palette = torch.cat((base, base + 1e-4 * torch.randn(128, 3, generator=generator)))
    image = palette.T.reshape(1, 3, 1, 256)
    assert torch.equal(nearest_colour(image, palette).flatten(), torch.arange(256))


def test_palette_image_maps_indices_back_to_colours() -> None:
    palette = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.5, 0.25]])
    indices = torch.tensor([[[[0, 1], [1, 0]]]])
    rgb = palette_image(indices, palette)
    assert rgb.shape == (1, 3, 2, 2)
    assert rgb[0, :, 0, 1].tolist() == [1.0, 0.5, 0.25]
    assert torch.equal(nearest_colour(rgb, palette), indices)


def test_shape_errors_say_what_was_expected() -> None:
    with pytest.raises(ColorcnnError, match=r"\(N, 3, H, W\), got \(3, 4, 4\)"):
        fit_palette(torch.rand(3, 4, 4))
    with pytest.raises(ColorcnnError, match=r"palette must have shape"):
        nearest_colour(torch.rand(1, 3, 2, 2), torch.rand(4, 2))


def test_a_fixed_palette_file_is_loaded_and_checked(tmp_path) -> None:
    import json

    import numpy as np

    from colorcnn.color.palette import load_palette

    colours = np.random.RandomState(0).uniform(0, 1, size=(24, 3))
    np.save(tmp_path / "colour_kmeans24_cat7.npy", colours[:, None, :])  # the course's shape
    assert torch.allclose(load_palette(tmp_path / "colour_kmeans24_cat7.npy"),
                          torch.tensor(colours, dtype=torch.float32))  # fmt: skip
    (tmp_path / "palette.json").write_text(json.dumps({"colours": colours.tolist()}))
    assert load_palette(tmp_path / "palette.json").shape == (24, 3)
    np.save(tmp_path / "bad.npy", np.zeros((24, 2)))
    with pytest.raises(ColorcnnError, match=r"has shape \(24, 2\); expected"):
        load_palette(tmp_path / "bad.npy")
    (tmp_path / "text.npy").write_text("not numpy")
    with pytest.raises(ColorcnnError, match="not a readable palette"):
        load_palette(tmp_path / "text.npy")


def test_a_cached_palette_is_read_back_instead_of_fitted_again(tmp_path, monkeypatch) -> None:
    from colorcnn.color import palette as palette_module

    images = _four_colour_images()
    fitted = fit_palette(images, num_colours=4, seed=0, cache_dir=tmp_path)
    assert torch.equal(fitted, fit_palette(images, num_colours=4, seed=0))

    def no_fitting(*args):
        raise AssertionError("the palette was fitted again")

    monkeypatch.setattr(palette_module, "_fit", no_fitting)
    assert torch.equal(fit_palette(images, num_colours=4, seed=0, cache_dir=tmp_path), fitted)
    # Other pixels, another seed or another number of colours are other entries.
    for changed in (
        dict(rgb=images.flip(0), num_colours=4, seed=0),
        dict(rgb=images, num_colours=4, seed=1),
        dict(rgb=images, num_colours=5, seed=0),
    ):
        with pytest.raises(AssertionError, match="fitted again"):
            fit_palette(cache_dir=tmp_path, **changed)


def test_a_cache_that_cannot_be_written_only_costs_the_next_fitting(tmp_path) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would go")
    images = _four_colour_images()
    palette = fit_palette(images, num_colours=4, seed=0, cache_dir=blocked)
    assert torch.equal(palette, fit_palette(images, num_colours=4, seed=0))

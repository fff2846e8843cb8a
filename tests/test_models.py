"""Every registered model, driven by the registry: shapes, finiteness, learning, activations."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from colorcnn.errors import ColorcnnError
from colorcnn.models import ColourNet, create_model, list_models, model_objective
from colorcnn.models.blocks import ConcatConv2d, SameConv2d
from colorcnn.models.cnn import CNN
from colorcnn.models.conv_transpose_net import ConvTransposeNet
from colorcnn.models.folding import fold_batch_norm
from colorcnn.models.pool_upsample_net import PoolUpsampleNet
from colorcnn.models.unet import UNet

ALL_MODELS = list_models()


def test_registry_lists_the_course_models() -> None:
    for name in ("regression_cnn", "cnn", "pool_upsample_net", "conv_transpose_net", "unet",
                 "dilated_unet"):  # fmt: skip
        assert name in ALL_MODELS
    assert list_models("unet*") == ["unet", "unet_large", "unet_small"]


def test_unknown_model_names_the_known_ones() -> None:
    with pytest.raises(ColorcnnError, match="unknown model 'nope'.*unet"):
        create_model("nope")


@pytest.mark.parametrize("name", ALL_MODELS)
def test_forward_shape_and_finite(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name)
    x = torch.rand(3, 1, 32, 32)
    out = model(x)
    expected_channels = 24 if model.objective == "classification" else 3
    if model.output_scale > 1:  # super-resolution networks predict the luminance
        expected_channels = 1
    side = 32 * model.output_scale
    assert out.shape == (3, expected_channels, side, side)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", ALL_MODELS)
def test_one_backward_step_changes_every_weight_and_lowers_loss(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, out_channels=5)
    x = torch.rand(4, 1, 32, 32)
    # Classes that follow from the input, so that there is something to learn: a network
    # that starts out predicting every class alike (an upscaler, whose last layer starts
    # near zero) is at the optimum of random targets already.
    targets = (x[:, 0] * 5).long().clamp(max=4)  # (4, 32, 32)
    scale = model.output_scale
    targets = targets.repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}

    def loss_value() -> torch.Tensor:
        return nn.functional.cross_entropy(model(x), targets)

    first = loss_value()
    first.backward()
    for param_name, param in model.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), param_name
    optimizer.step()
    for param_name, param in model.named_parameters():
        assert not torch.equal(before[param_name], param), f"{param_name} did not move"
    for _ in range(5):
        optimizer.zero_grad()
        loss = loss_value()
        loss.backward()
        optimizer.step()
    assert loss_value() < first


@pytest.mark.parametrize("name", ALL_MODELS)
def test_activations_are_exposed_in_order(name: str) -> None:
    model = create_model(name).eval()
    x = torch.rand(2, 1, 32, 32)
    activations = model.forward_activations(x)
    names = list(activations)
    assert names[-1] == "output"
    assert names[:-1] == [f"out{i}" for i in range(1, len(names))]
    assert len(names) >= 5
    assert torch.equal(activations["output"], model(x))
    for tensor in activations.values():
        assert tensor.shape[0] == 2 and torch.isfinite(tensor).all()


@pytest.mark.parametrize("name", ALL_MODELS)
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_folded_batch_norm_computes_the_same_function(name: str, layout) -> None:
    torch.manual_seed(0)
    model = create_model(name).to(memory_format=layout)
    with torch.no_grad():  # running statistics and affine weights far from their start
        for _ in range(3):
            model(3 * torch.rand(6, 1, 32, 32) + 1)
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(-2, 2)
                module.bias.uniform_(-1, 1)
    before = {key: value.clone() for key, value in model.state_dict().items()}
    folded = fold_batch_norm(model)
    x = torch.rand(2, 1, 32, 32).contiguous(memory_format=layout)
    with torch.inference_mode():
        expected = model.eval()(x)
        got = folded(x)
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-5 * expected.abs().max())
    for key, value in model.state_dict().items():  # the model itself is left alone
        assert torch.equal(value, before[key]), key
    norms_after_conv = [
        (first, second)
        for sequence in folded.modules()
        if isinstance(sequence, nn.Sequential)
        for first, second in zip(sequence, list(sequence)[1:], strict=False)
        if isinstance(first, nn.Conv2d | nn.ConvTranspose2d) and isinstance(second, nn.BatchNorm2d)
    ]
    assert norms_after_conv == []
    for key, weight in folded.named_parameters():
        if weight.ndim == 4 and weight.shape[1] > 1 and weight.shape[-1] > 1:  # unambiguous
            assert weight.is_contiguous(memory_format=layout), key


def test_folding_changes_the_layers_that_follow_a_convolution() -> None:
    folded = fold_batch_norm(create_model("cnn"))
    first_block = folded.downconv1
    assert _layer_types(first_block) == [nn.Conv2d, nn.Identity, nn.ReLU, nn.MaxPool2d]
    assert first_block[0].extra_padding == 0 and first_block[0].padding == (1, 1)
    assert first_block[2].inplace
    # 2022 blocks pool between the convolution and the batch norm: nothing folds there.
    kept = fold_batch_norm(create_model("pool_upsample_net"))
    assert any(isinstance(layer, nn.BatchNorm2d) for layer in kept.modules())


@pytest.mark.parametrize("name", ALL_MODELS)
def test_hyperparameters_rebuild_the_same_network(name: str) -> None:
    model = create_model(name, kernel=5, out_channels=7)
    rebuilt = create_model(name, **model.hyperparameters)
    rebuilt.load_state_dict(model.state_dict())
    x = torch.rand(1, 1, 32, 32)
    assert torch.equal(model.eval()(x), rebuilt.eval()(x))
    assert isinstance(model, ColourNet)


@pytest.mark.parametrize("name", ALL_MODELS)
@pytest.mark.parametrize("kernel", [3, 4, 5])
def test_every_kernel_size_keeps_the_image_size(name: str, kernel: int) -> None:
    model = create_model(name, kernel=kernel).eval()  # batch norm on 1 image
    scale = model.output_scale  # the size kept, or multiplied by an upscaler's scale
    assert model(torch.rand(1, 1, 32, 32)).shape[-2:] == (32 * scale, 32 * scale)
    tall = (4 * model.size_multiple, 3 * model.size_multiple)
    expected = (tall[0] * scale, tall[1] * scale)
    assert model(torch.rand(1, 1, *tall)).shape[-2:] == expected


DEEP_MODELS = [name for name in ALL_MODELS if create_model(name).size_multiple > 4]


@pytest.mark.parametrize("name", DEEP_MODELS)
def test_sides_off_the_size_multiple_are_refused(name: str) -> None:
    model = create_model(name)
    side = model.size_multiple + 2
    with pytest.raises(ValueError, match=f"multiples of {model.size_multiple}"):
        model(torch.rand(1, 1, side, side))


def test_objective_is_read_without_building_weights() -> None:
    assert model_objective("unet") == "classification"
    assert model_objective("regression_cnn") == "regression"


def _layer_types(block: nn.Module) -> list[type]:
    """The layers' types, a convolution that keeps the size (SameConv2d) read as the
    course's nn.Conv2d with its padding."""
    return [nn.Conv2d if isinstance(layer, SameConv2d) else type(layer) for layer in block]


def test_cnn_follows_the_2019_layer_list() -> None:
    nf, nc, nic = 32, 24, 1
    model = CNN(num_filters=nf, out_channels=nc, in_channels=nic)
    conv_block_2019 = [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]
    assert _layer_types(model.downconv1) == conv_block_2019 + [nn.MaxPool2d]
    assert _layer_types(model.rfconv) == conv_block_2019
    assert _layer_types(model.upconv2) == conv_block_2019 + [nn.Upsample]
    channels = [
        (model.downconv1[0].in_channels, model.downconv1[0].out_channels),
        (model.downconv2[0].in_channels, model.downconv2[0].out_channels),
        (model.rfconv[0].in_channels, model.rfconv[0].out_channels),
        (model.upconv1[0].in_channels, model.upconv1[0].out_channels),
        (model.upconv2[0].in_channels, model.upconv2[0].out_channels),
        (model.finalconv.in_channels, model.finalconv.out_channels),
    ]
    assert channels == [(nic, nf), (nf, 2 * nf), (2 * nf, 2 * nf), (2 * nf, nf), (nf, nc), (nc, nc)]
    # Course count: k*k*Cin*Cout weights + Cout biases per conv, plus 2 per BN channel.
    convs = sum(3 * 3 * cin * cout + cout for cin, cout in channels)
    batch_norms = 2 * (nf + 2 * nf + 2 * nf + nf + nc)
    assert sum(p.numel() for p in model.parameters()) == convs + batch_norms


def test_unet_skips_concatenate_as_in_the_course() -> None:
    nf, nc, nic = 32, 24, 1
    model = UNet(num_filters=nf, out_channels=nc, in_channels=nic)
    assert model.upconv1[0].in_channels == 4 * nf
    assert model.upconv2[0].in_channels == 2 * nf
    assert model.finalconv.in_channels == nc + nic
    assert model.rfconv[0].dilation == (1, 1)
    assert create_model("dilated_unet").rfconv[0].dilation == (2, 2)


def test_2022_models_resample_before_batch_norm() -> None:
    pool_net = PoolUpsampleNet()
    assert _layer_types(pool_net.layer1) == [nn.Conv2d, nn.MaxPool2d, nn.BatchNorm2d, nn.ReLU]
    assert _layer_types(pool_net.layer3) == [nn.Conv2d, nn.Upsample, nn.BatchNorm2d, nn.ReLU]
    transpose_net = ConvTransposeNet()
    first, third = transpose_net.layer1[0], transpose_net.layer3[0]
    assert (first.stride, first.padding) == ((2, 2), (1, 1))
    assert isinstance(third, nn.ConvTranspose2d)
    assert (third.stride, third.padding, third.output_padding) == ((2, 2), (1, 1), (1, 1))


def test_invalid_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        create_model("unet", num_filters=0)


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_concat_conv_is_the_convolution_of_the_concatenation(layout) -> None:
    torch.manual_seed(0)
    split = ConcatConv2d(25, 24, 3, padding="same").to(memory_format=layout)
    whole = nn.Conv2d(25, 24, 3, padding="same").to(memory_format=layout)
    whole.load_state_dict(split.state_dict())
    grey = torch.randn(4, 1, 8, 8).contiguous(memory_format=layout)
    colour = torch.randn(4, 24, 8, 8).contiguous(memory_format=layout)
    upstream = torch.randn(4, 24, 8, 8)

    def run(module, joined: bool):
        parts = [grey.clone().requires_grad_(True), colour.clone().requires_grad_(True)]
        output = module(torch.cat(parts, dim=1)) if joined else module(*parts)
        (output * upstream).sum().backward()
        return output, parts[0].grad, parts[1].grad, module.weight.grad, module.bias.grad

    for got, want in zip(run(split, False), run(whole, True), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="expected 25 channels in all"):
        split(grey, grey)


def test_photo_unet_takes_an_empty_batch() -> None:
    """Under torchrun a process's share of a small last batch can be empty."""
    model = create_model("photo_unet", out_channels=2).eval()
    with torch.no_grad():
        assert model(torch.zeros(0, 1, 64, 64)).shape == (0, 2, 64, 64)


def test_concat_conv_refuses_what_it_does_not_compute() -> None:
    with pytest.raises(ValueError, match="groups=1 and zero padding"):
        ConcatConv2d(4, 4, 3, groups=2)


@pytest.mark.parametrize("kernel", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("dilation", [1, 2])
def test_same_conv_is_torchs_same_padding_without_its_note(kernel: int, dilation: int) -> None:
    torch.manual_seed(0)
    ours = SameConv2d(3, 5, kernel, dilation=dilation)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's note about even kernels
        reference = nn.Conv2d(3, 5, kernel, padding="same", dilation=dilation)
    reference.load_state_dict(ours.state_dict())
    x = torch.randn(2, 3, 9, 12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # ours says nothing
        got = ours(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = reference(x)
    assert got.shape == x.shape[:1] + (5,) + x.shape[2:]
    assert torch.equal(got, want)

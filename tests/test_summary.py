"""Model anatomy: counts against torch's, receptive fields against gradients."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from torch import nn

from colorcnn.analysis.summary import activation_spans, summarize
from colorcnn.cli import main
from colorcnn.errors import ColorcnnError
from colorcnn.models import create_model, list_models

ALL_MODELS = list_models()


@pytest.mark.parametrize("name", ALL_MODELS)
def test_weight_and_bias_counts_match_torch(name: str) -> None:
    model = create_model(name)
    summary = summarize(model, name, 2 * model.size_multiple if model.size_multiple > 4 else 32)
    totals = summary.totals
    assert totals["weights"] + totals["biases"] == sum(p.numel() for p in model.parameters())
    biases = sum(m.bias.numel() for m in model.modules() if getattr(m, "bias", None) is not None)
    assert totals["biases"] == biases


def test_the_course_unet_costs_what_the_course_says() -> None:
    # 3x3 convolutions: the first layer has 1*32*9 weights and 32*32*32 outputs, each
    # reading 9 inputs; the whole UNet costs about 18.8 M multiply-adds per 32 px image.
    summary = summarize(create_model("unet"), "unet", 32)
    first = summary.layers[0]
    assert (first.weights, first.biases, first.outputs) == (288, 32, 32 * 32 * 32)
    assert first.connections == 32 * 32 * 32 * 9
    assert first.receptive_field == 3
    assert 18.7e6 < summary.totals["connections"] < 18.9e6


def test_twice_the_image_keeps_weights_and_quadruples_the_rest() -> None:
    small = summarize(create_model("cnn"), "cnn", 32).totals
    large = summarize(create_model("cnn"), "cnn", 64).totals
    assert large["weights"] == small["weights"]
    assert large["outputs"] == 4 * small["outputs"]
    assert large["connections"] == 4 * small["connections"]


def _linear_copy(model: nn.Module) -> nn.Module:
    """The same connections with every path positive and linear: max pooling becomes
    average pooling over the same window, ReLU and ReLU6 the identity, weights their
    magnitudes, so a gradient is non-zero exactly where an output pixel reads the input."""
    linear = copy.deepcopy(model).eval()
    for parent in linear.modules():
        for child_name, child in parent.named_children():
            if isinstance(child, nn.MaxPool2d):
                setattr(parent, child_name, nn.AvgPool2d(child.kernel_size, child.stride))
            elif isinstance(child, nn.ReLU | nn.ReLU6):
                setattr(parent, child_name, nn.Identity())
    with torch.no_grad():
        for parameter in linear.parameters():
            parameter.abs_().add_(0.01)
    return linear


@pytest.mark.parametrize("name", ALL_MODELS)
@pytest.mark.parametrize("kernel", [3, 4, 5])
def test_receptive_fields_match_the_gradient_of_one_output_pixel(name: str, kernel: int) -> None:
    model = create_model(name, kernel=kernel)
    side = 96 if model.size_multiple > 4 else 48
    image = torch.ones(1, model.in_channels, side, side)
    spans = activation_spans(model.eval(), image)
    linear = _linear_copy(model)
    for key, span in spans.items():
        measured_image = image.clone().requires_grad_(True)
        activation = linear.forward_activations(measured_image)[key]
        row = activation.shape[-2] // 2 + 1  # off the centre, where odd phases show
        activation[0, :, row, row].sum().backward()
        rows = torch.nonzero(measured_image.grad[0].abs().sum(dim=(0, 2)) > 0).flatten()
        cols = torch.nonzero(measured_image.grad[0].abs().sum(dim=(0, 1)) > 0).flatten()
        expected = (int(span.first[row]), int(span.last[row]))
        assert (int(rows.min()), int(rows.max())) == expected, f"{name} {key}"
        assert (int(cols.min()), int(cols.max())) == expected, f"{name} {key}"


def test_summary_command_prints_a_table_and_json(capsys) -> None:
    assert main(["summary", "unet", "--image-size", "32"]) == 0
    text = capsys.readouterr().out
    assert "downconv1.0" in text and "receptive" in text and "twice" in text
    assert main(["summary", "cnn", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["totals"]["weights"] > 0 and payload["twice_as_large"]["image_size"] == 64


def test_summary_of_a_shipped_model_and_bad_sizes(capsys) -> None:
    assert main(["summary", "photo", "--image-size", "64", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["model"] == "photo"
    with pytest.raises(ColorcnnError, match="multiple of 32"):
        summarize(create_model("photo_unet"), "photo_unet", 48)

"""Model anatomy: per layer and in total, the weights, biases, outputs, connections
(multiply-adds) and receptive field, the numbers the course asks students to work out by hand.

Counts come from forward hooks on the layers. Receptive fields are derived, not measured:
while the network runs once, every torch operation maps each output row to the span of
input rows it can read (a convolution widens the span by its dilated kernel, pooling by its
window, an upsampling maps rows back, a concatenation takes the union), so the receptive
field of any pixel is exact, borders and odd phases included. Kernels are square, so the
span of columns is the span of rows.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from colorcnn.errors import ColorcnnError

# Operations that compute each output pixel from the same pixel of their inputs.
_POINTWISE = frozenset({
    "relu", "relu_", "batch_norm", "add", "add_", "__add__", "__radd__", "mul", "__mul__",
    "__rmul__", "sub", "__sub__", "clamp", "clamp_", "sigmoid", "tanh", "dropout", "softmax",
    "log_softmax", "contiguous", "float", "to", "__getitem__", "leaky_relu", "gelu", "silu",
    "div", "__truediv__", "neg", "__neg__", "abs", "detach", "clone", "relu6", "hardtanh",
})  # fmt: skip


@dataclass
class Span:
    """For each output row: the first and last input row it depends on."""

    first: np.ndarray
    last: np.ndarray

    @classmethod
    def identity(cls, rows: int) -> Span:
        return cls(np.arange(rows), np.arange(rows))

    def gather(self, sources: list[list[int]]) -> Span:
        """The union of the spans of `sources[o]`, for every output row o."""
        first = np.array([min(self.first[s] for s in rows) for rows in sources])
        last = np.array([max(self.last[s] for s in rows) for rows in sources])
        return Span(first, last)

    def union(self, other: Span) -> Span:
        return Span(np.minimum(self.first, other.first), np.maximum(self.last, other.last))

    @property
    def size(self) -> int:
        """The largest receptive field of any row."""
        return int((self.last - self.first).max() + 1)


def _pair(value) -> int:
    value = value[0] if isinstance(value, (tuple, list)) else value
    return int(value)


def _window_sources(
    in_rows: int, out_rows: int, kernel: int, stride: int, pad_before: int, dilation: int
) -> list[list[int]]:
    sources = []
    for out in range(out_rows):
        rows = [out * stride - pad_before + j * dilation for j in range(kernel)]
        rows = [r for r in rows if 0 <= r < in_rows]
        if not rows:
            raise ColorcnnError("a layer reads nothing but padding; the image is too small")
        sources.append(rows)
    return sources


def _arg(args: tuple, kwargs: dict, index: int, name: str, default):
    if name in kwargs:
        return kwargs[name]
    return args[index] if len(args) > index else default


def _propagate(name: str, args: tuple, kwargs: dict, spans: dict, result) -> Span | None:
    """The span of `result` from the spans of the arguments, or None if none is known."""
    tensors = [a for a in args if isinstance(a, torch.Tensor) and id(a) in spans]
    if name == "cat":
        tensors = [t for t in args[0] if id(t) in spans]
    if not tensors or not isinstance(result, torch.Tensor) or result.ndim != 4:
        return None
    source = spans[id(tensors[0])]
    in_rows, out_rows = tensors[0].shape[-2], result.shape[-2]
    if name == "conv2d":
        kernel = args[1].shape[-2]
        stride = _pair(_arg(args, kwargs, 3, "stride", 1))
        padding = _arg(args, kwargs, 4, "padding", 0)
        dilation = _pair(_arg(args, kwargs, 5, "dilation", 1))
        if padding == "same":
            pad_before = dilation * (kernel - 1) // 2
        elif padding == "valid":
            pad_before = 0
        else:
            pad_before = _pair(padding)
        return source.gather(
            _window_sources(in_rows, out_rows, kernel, stride, pad_before, dilation)
        )
    if name == "conv_transpose2d":
        kernel = args[1].shape[-2]
        stride = _pair(_arg(args, kwargs, 3, "stride", 1))
        padding = _pair(_arg(args, kwargs, 4, "padding", 0))
        dilation = _pair(_arg(args, kwargs, 7, "dilation", 1))
        sources = []
        for out in range(out_rows):
            rows = []
            for j in range(kernel):
                scaled = out + padding - j * dilation
                if scaled % stride == 0 and 0 <= scaled // stride < in_rows:
                    rows.append(scaled // stride)
            sources.append(rows or [min(max(out // stride, 0), in_rows - 1)])
        return source.gather(sources)
    if name in ("max_pool2d", "max_pool2d_with_indices", "avg_pool2d"):
        kernel = _pair(_arg(args, kwargs, 1, "kernel_size", 1))
        stride = _arg(args, kwargs, 2, "stride", None)
        stride = kernel if stride in (None, (), []) else _pair(stride)
        padding = _pair(_arg(args, kwargs, 3, "padding", 0))
        dilation = _pair(kwargs.get("dilation", args[4] if len(args) > 4 else 1))
        if name == "avg_pool2d":
            dilation = 1
        return source.gather(_window_sources(in_rows, out_rows, kernel, stride, padding, dilation))
    if name == "pad":
        widths = _arg(args, kwargs, 1, "pad", ())
        top = widths[2] if len(widths) >= 4 else 0
        # A padded row reads no input; the window that covers it always covers the row
        # next to it too, so mapping it there adds nothing to any receptive field.
        return source.gather([[min(max(out - top, 0), in_rows - 1)] for out in range(out_rows)])
    if name == "mean" and out_rows == 1 < in_rows:  # a global average sees every row
        return Span(np.array([source.first.min()]), np.array([source.last.max()]))
    if name == "expand":
        if in_rows == 1:  # one summary row repeated over the picture
            return source.gather([[0]] * out_rows)
        return source if in_rows == out_rows else None
    if name == "pixel_shuffle":  # each output row comes from one row of the input
        factor = int(args[1])
        return source.gather([[out // factor] for out in range(out_rows)])
    if name == "pixel_unshuffle":
        factor = int(args[1])
        return source.gather([[out * factor + j for j in range(factor)] for out in range(out_rows)])
    if name == "interpolate":
        mode = kwargs.get("mode", args[3] if len(args) > 3 else "nearest")
        align_corners = kwargs.get("align_corners", args[4] if len(args) > 4 else None)
        scale = in_rows / out_rows
        sources = []
        for out in range(out_rows):
            if mode == "nearest":
                sources.append([min(int(math.floor(out * scale)), in_rows - 1)])
            elif mode == "bilinear" and not align_corners:
                position = max((out + 0.5) * scale - 0.5, 0.0)
                below = min(int(math.floor(position)), in_rows - 1)
                above = min(below + 1, in_rows - 1)
                sources.append([below, above] if position > below else [below])
            else:
                raise ColorcnnError(f"receptive field of {mode} interpolation is not modelled")
        return source.gather(sources)
    if name in ("cat", *_POINTWISE):
        same = [spans[id(t)] for t in tensors if t.shape[-2] == out_rows]
        if len(same) != len(tensors):
            return None
        span = same[0]
        for other in same[1:]:
            span = span.union(other)
        return span
    return None


class _SpanTracker(TorchFunctionMode):
    """Follows the row spans of every 4-D tensor through the torch calls of one forward."""

    def __init__(self, image: torch.Tensor):
        super().__init__()
        self.spans: dict[int, Span] = {id(image): Span.identity(image.shape[-2])}
        self.keep_alive: list[torch.Tensor] = [image]  # ids stay unique while tracked
        self.unknown: set[str] = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        name = getattr(func, "__name__", str(func))
        outputs = result if isinstance(result, tuple) else (result,)
        span = _propagate(name, args, kwargs, self.spans, outputs[0])
        if span is not None:
            self.spans[id(outputs[0])] = span
            self.keep_alive.append(outputs[0])
        elif isinstance(outputs[0], torch.Tensor) and outputs[0].ndim == 4:
            self.unknown.add(name)
        return result


@dataclass
class LayerRow:
    name: str
    kind: str
    weights: int
    biases: int
    output_shape: list[int]  # (C, H, W) for one image
    outputs: int
    connections: int  # multiply-adds for one image
    receptive_field: int | None  # input pixels (rows = columns) seen by one output pixel


@dataclass
class Summary:
    model: str
    image_size: int
    in_channels: int
    layers: list[LayerRow] = field(default_factory=list)
    activation_fields: dict[str, int] = field(default_factory=dict)

    @property
    def totals(self) -> dict[str, int]:
        return {
            "weights": sum(row.weights for row in self.layers),
            "biases": sum(row.biases for row in self.layers),
            "outputs": sum(row.outputs for row in self.layers),
            "connections": sum(row.connections for row in self.layers),
        }

    def to_dict(self) -> dict:
        return {
            "model": self.model, "image_size": self.image_size, "in_channels": self.in_channels,
            "layers": [asdict(row) for row in self.layers], "totals": self.totals,
            "activation_receptive_fields": self.activation_fields,
        }  # fmt: skip


def _connections(module: nn.Module, inputs: torch.Tensor, output: torch.Tensor) -> int:
    """Multiply-adds for one image."""
    if isinstance(module, nn.Conv2d):
        per_output = module.in_channels // module.groups * math.prod(module.kernel_size)
        return output[0].numel() * per_output
    if isinstance(module, nn.ConvTranspose2d):
        per_input = module.out_channels // module.groups * math.prod(module.kernel_size)
        return inputs[0].numel() * per_input
    if isinstance(module, nn.Linear):
        return output[0].numel() * module.in_features
    return 0


def summarize(model: nn.Module, name: str, image_size: int = 32) -> Summary:
    """Run `model` once on a (1, C, size, size) image and describe every leaf layer."""
    multiple = getattr(model, "size_multiple", 1)
    if image_size < 1 or image_size % multiple:
        raise ColorcnnError(
            f"{name} needs an image size that is a positive multiple of {multiple}, "
            f"got {image_size}"
        )
    in_channels = getattr(model, "in_channels", 1)
    summary = Summary(name, image_size, in_channels)
    image = torch.zeros(1, in_channels, image_size, image_size)
    tracker = _SpanTracker(image)
    hooks = []

    def record(module_name: str):
        def hook(module, inputs, output):
            weight = getattr(module, "weight", None)
            bias = getattr(module, "bias", None)
            span = tracker.spans.get(id(output))
            summary.layers.append(LayerRow(
                name=module_name, kind=type(module).__name__,
                weights=weight.numel() if isinstance(weight, torch.Tensor) else 0,
                biases=bias.numel() if isinstance(bias, torch.Tensor) else 0,
                output_shape=list(output.shape[1:]), outputs=output[0].numel(),
                connections=_connections(module, inputs[0], output),
                receptive_field=span.size if span is not None else None,
            ))  # fmt: skip

        return hook

    for module_name, module in model.named_modules():
        if module_name and not list(module.children()):
            hooks.append(module.register_forward_hook(record(module_name)))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), tracker:
            activations = (
                model.forward_activations(image)
                if hasattr(model, "forward_activations")
                else {"output": model(image)}
            )
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    for key, tensor in activations.items():
        span = tracker.spans.get(id(tensor))
        if span is None:
            raise ColorcnnError(
                f"cannot follow the receptive field of {name} to {key!r} "
                f"(unmodelled operations: {', '.join(sorted(tracker.unknown)) or 'none'})"
            )
        summary.activation_fields[key] = span.size
    return summary


def activation_spans(model: nn.Module, image: torch.Tensor) -> dict[str, Span]:
    """The row spans of each named activation for `image` (1, C, H, W)."""
    tracker = _SpanTracker(image)
    with torch.no_grad(), tracker:
        activations = model.forward_activations(image)
    return {key: tracker.spans[id(tensor)] for key, tensor in activations.items()}

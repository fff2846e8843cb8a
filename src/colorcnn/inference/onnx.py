"""ONNX export with a dynamic batch and image size.

The exported file carries the checkpoint's description (model, formulation, palette) in its
metadata, so `load_model` (and `colorcnn colorize --backend onnx`) needs nothing but the
.onnx file; colorcnn.trained.onnx_runtime runs it.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import torch

from colorcnn.errors import ColorcnnError, first_line
from colorcnn.files import atomic_path
from colorcnn.trained import load_model
from colorcnn.trained.onnx_runtime import METADATA_KEY

OPSET = 18
# Image sides are multiples of the network's size_multiple, up to this many pixels.
_MAX_SIDE = 16384


def export_onnx(checkpoint: str | Path, target: str | Path) -> Path:
    """Export a checkpoint (run folder, .safetensors or shipped name) to ONNX; returns the
    written path."""
    trained = load_model(checkpoint, fold=False)
    if trained.runtime != "torch":
        raise ColorcnnError(f"{checkpoint} is an ONNX file already; expected a checkpoint")
    model = trained.network
    multiple = model.size_multiple
    example = torch.rand(1, model.in_channels, 8 * multiple, 12 * multiple)
    batch = torch.export.Dim("batch", min=1, max=1024)
    steps = _MAX_SIDE // multiple
    height = multiple * torch.export.Dim("height_steps", min=1, max=steps)
    width = multiple * torch.export.Dim("width_steps", min=1, max=steps)
    target = Path(target)
    try:
        import onnx
        import onnxscript  # noqa: F401 - torch's exporter needs it
    except ImportError as error:
        raise ColorcnnError(
            f"ONNX export needs the onnx extra ({error.name} is missing): "
            "pip install 'colorcnn[onnx]'"
        ) from None
    with atomic_path(target) as tmp_path:
        program = _export(model, example, batch, height, width)
        proto = program.model_proto
        entry = proto.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, json.dumps(trained.info, sort_keys=True)
        onnx.save(proto, str(tmp_path))
    return target


def _export(model, example, batch, height, width):
    # The exporter reports, for every export, the torchvision operators it skips (colorcnn
    # uses none) and deprecations inside torch itself: nothing a user can act on.
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            return _run_exporter(model, example, batch, height, width)
    finally:
        exporter_log.setLevel(level)


def _run_exporter(model, example, batch, height, width):
    try:
        return torch.onnx.export(
            model,
            (example,),
            input_names=["input"],
            output_names=["output"],
            dynamic_shapes={"x": {0: batch, 2: height, 3: width}},
            opset_version=OPSET,
            dynamo=True,
            verbose=False,
        )
    except Exception as error:  # the exporter raises many internal types
        raise ColorcnnError(f"ONNX export failed ({first_line(error)})") from None

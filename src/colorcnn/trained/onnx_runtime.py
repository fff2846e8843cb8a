"""An exported network run by ONNX Runtime, called like the PyTorch module it came from.

`colorcnn export onnx` writes the checkpoint's description (model, formulation, palette)
into the file's metadata under METADATA_KEY, so the .onnx file alone describes itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from colorcnn.errors import ColorcnnError

METADATA_KEY = "colorcnn"


class OnnxModel:
    """Runs an exported network with ONNX Runtime, called like the PyTorch module."""

    def __init__(self, path: str | Path):
        try:
            import onnxruntime
        except ImportError as error:
            raise ColorcnnError(
                "the ONNX backend needs onnxruntime: pip install 'colorcnn[onnx]'"
            ) from error
        path = Path(path)
        try:
            self.session = onnxruntime.InferenceSession(
                str(path), providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime raises its own exception types
            raise ColorcnnError(f"{path} is not a readable ONNX model ({error})") from None
        metadata = self.session.get_modelmeta().custom_metadata_map
        if METADATA_KEY not in metadata:
            raise ColorcnnError(f"{path} was not exported by colorcnn; it has no description")
        self.info = json.loads(metadata[METADATA_KEY])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(inputs.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(self.session.run(None, {self.input_name: array})[0])

"""Self-describing checkpoints: tensors in safetensors, everything else in JSON. No pickle.

A checkpoint is `<name>.safetensors` plus `<name>.json`. The JSON (model name and
arguments, palette, data and training settings, epoch, metrics, optimizer settings) is also
stored inside the safetensors header, so the tensor file alone always describes itself and
a run killed between the two writes still resumes from a consistent file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from colorcnn.errors import ColorcnnError, first_line
from colorcnn.files import atomic_path, write_json
from colorcnn.models import create_model
from colorcnn.weights import describe_shipped, shipped_models, shipped_path

CHECKPOINT_FORMAT = "colorcnn-checkpoint-v1"
METADATA_KEY = "colorcnn"
MODEL_PREFIX = "model."
OPTIMIZER_PREFIX = "optimizer."
RNG_KEY = "rng.torch"


# What every checkpoint description must hold, with its JSON type.
_REQUIRED_INFO = {"model": str, "model_args": dict, "epoch": int}


@dataclass
class Checkpoint:
    """A loaded checkpoint: its description and its tensors by role."""

    info: dict[str, Any]
    model_state: dict[str, torch.Tensor]
    optimizer_state: dict[str, Any] | None
    torch_rng_state: torch.Tensor | None


def _optimizer_to_tensors(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for param_index, param_state in state["state"].items():
        for key, value in param_state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{OPTIMIZER_PREFIX}{param_index}.{key}"] = (
                    value.detach().cpu().contiguous()
                )
            else:
                scalars.setdefault(str(param_index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _optimizer_from_tensors(
    tensors: dict[str, torch.Tensor], description: dict[str, Any]
) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        param_index, key = name[len(OPTIMIZER_PREFIX) :].split(".", 1)
        state.setdefault(int(param_index), {})[key] = value
    for param_index, values in description.get("scalars", {}).items():
        state.setdefault(int(param_index), {}).update(values)
    return {"state": state, "param_groups": description["param_groups"]}


def save_checkpoint(
    path_stem: Path,
    model: torch.nn.Module,
    info: dict[str, Any],
    optimizer: torch.optim.Optimizer | None = None,
) -> None:
    """Write `<stem>.safetensors` and `<stem>.json` atomically."""
    tensors = {
        MODEL_PREFIX + name: value.detach().cpu().contiguous()
        for name, value in model.state_dict().items()
    }
    info = {"format": CHECKPOINT_FORMAT, **info}
    if optimizer is not None:
        optimizer_tensors, optimizer_description = _optimizer_to_tensors(optimizer.state_dict())
        tensors.update(optimizer_tensors)
        info["optimizer"] = optimizer_description
        tensors[RNG_KEY] = torch.get_rng_state()
    metadata = {METADATA_KEY: json.dumps(info, sort_keys=True)}
    path_stem = Path(path_stem)
    with atomic_path(path_stem.with_suffix(".safetensors")) as tmp_path:
        save_file(tensors, str(tmp_path), metadata=metadata)
    write_json(path_stem.with_suffix(".json"), info)


def resolve_checkpoint(path: str | Path, prefer: str = "best") -> Path:
    """Accept a shipped model's name, a run folder, a `.safetensors` file, a `.json` file,
    or a stem."""
    shipped = shipped_path(str(path))
    if shipped is not None and not Path(path).exists():
        return shipped
    path = Path(path)
    if path.is_dir():
        for name in (prefer, "last", "best"):
            candidate = path / "checkpoints" / f"{name}.safetensors"
            if candidate.is_file():
                return candidate
        raise ColorcnnError(
            f"{path} holds no checkpoints/{prefer}.safetensors; expected a run folder made by "
            "`colorcnn train`, or a .safetensors checkpoint"
        )
    if len(path.parts) > 1 and not path.exists() and not path.with_suffix(".safetensors").exists():
        raise ColorcnnError(
            f"{path} does not exist; expected a run folder or a .safetensors checkpoint"
        )
    if path.suffix == "" and not path.with_suffix(".safetensors").is_file():
        # A bare name that is neither a shipped model nor a checkpoint stem nor a folder.
        names = ", ".join(sorted(shipped_models()))
        trained = [
            name for name in shipped_models() if describe_shipped(name)["model"] == path.name
        ]
        hint = f" (weights of this architecture: {', '.join(trained)})" if trained else ""
        raise ColorcnnError(
            f"{path} is no shipped model, run folder or checkpoint{hint}; expected one of "
            f"{names}, a run folder or a .safetensors file"
        )
    if path.suffix == ".json" or path.suffix == "":
        path = path.with_suffix(".safetensors")
    if not path.is_file():
        raise ColorcnnError(f"checkpoint {path} does not exist; expected a .safetensors file")
    return path


def load_checkpoint(path: str | Path, prefer: str = "best") -> Checkpoint:
    """Read a checkpoint without unpickling anything: safetensors tensors and JSON text only."""
    tensor_path = resolve_checkpoint(path, prefer)
    try:
        with safe_open(str(tensor_path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        tensors = load_file(str(tensor_path))
    except (SafetensorError, OSError, ValueError) as error:
        raise ColorcnnError(
            f"{tensor_path} is not a readable safetensors checkpoint ({error})"
        ) from error
    try:
        info = json.loads(metadata[METADATA_KEY])
    except (KeyError, json.JSONDecodeError) as error:
        raise ColorcnnError(
            f"{tensor_path} has no colorcnn description in its header; expected a checkpoint "
            "written by colorcnn"
        ) from error
    if not isinstance(info, dict) or info.get("format") != CHECKPOINT_FORMAT:
        found = info.get("format") if isinstance(info, dict) else type(info).__name__
        raise ColorcnnError(f"{tensor_path} has format {found!r}; expected {CHECKPOINT_FORMAT!r}")
    for key, kind in _REQUIRED_INFO.items():
        if not isinstance(info.get(key), kind):
            raise ColorcnnError(
                f"{tensor_path}: its description lacks a valid {key!r} "
                f"(expected {kind.__name__}); the header is damaged or was edited"
            )
    model_state = {
        name[len(MODEL_PREFIX) :]: value
        for name, value in tensors.items()
        if name.startswith(MODEL_PREFIX)
    }
    optimizer_tensors = {n: v for n, v in tensors.items() if n.startswith(OPTIMIZER_PREFIX)}
    optimizer_state = (
        _optimizer_from_tensors(optimizer_tensors, info["optimizer"])
        if "optimizer" in info
        else None
    )
    return Checkpoint(info, model_state, optimizer_state, tensors.get(RNG_KEY))


def build_model(checkpoint: Checkpoint) -> torch.nn.Module:
    """Rebuild the network a checkpoint describes and load its weights."""
    info = checkpoint.info
    try:
        model = create_model(info["model"], **info["model_args"])
        model.load_state_dict(checkpoint.model_state, strict=True)
    except (RuntimeError, TypeError, ValueError) as error:
        raise ColorcnnError(
            f"checkpoint weights do not fit model {info['model']!r} with {info['model_args']} "
            f"({first_line(error)})"
        ) from error
    return model

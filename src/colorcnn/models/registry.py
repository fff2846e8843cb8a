"""The model registry: a dict of named factories, filled by the `@register_model` decorator."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from colorcnn.errors import ColorcnnError
from colorcnn.models.base import ColourNet


@dataclass(frozen=True)
class ModelEntry:
    name: str
    factory: Callable[..., ColourNet]
    description: str


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(factory: Callable[..., ColourNet]) -> Callable[..., ColourNet]:
    """Register a factory under its function name; its docstring's first line describes it."""
    name = factory.__name__
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is registered twice")
    description = next(iter((factory.__doc__ or "").strip().splitlines()), "")
    _REGISTRY[name] = ModelEntry(name, factory, description)
    return factory


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style pattern, sorted."""
    return sorted(name for name in _REGISTRY if fnmatch.fnmatch(name, pattern))


def model_entry(name: str) -> ModelEntry:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ColorcnnError(
            f"unknown model {name!r}; expected one of {', '.join(list_models())}"
        ) from None


def create_model(name: str, **overrides: Any) -> ColourNet:
    """Build a registered model; keyword arguments override the variant's defaults."""
    return model_entry(name).factory(**overrides)


def model_objective(name: str) -> str:
    """ "classification" or "regression", read off a weightless copy of the model."""
    import torch

    with torch.device("meta"):
        return create_model(name).objective

"""Formulations: what a network predicts per pixel, its loss, and how a prediction becomes
a picture; importing this package registers every formulation (colour and
super-resolution), as importing `colorcnn.models` registers every architecture."""

from colorcnn.formulations import colour, superres  # noqa: F401
from colorcnn.formulations.base import (
    Formulation,
    build_formulation,
    check_target,
    default_target,
    formulation_class,
    formulation_from_description,
    list_formulations,
    register_formulation,
)

__all__ = [
    "Formulation",
    "build_formulation",
    "check_target",
    "default_target",
    "formulation_class",
    "formulation_from_description",
    "list_formulations",
    "register_formulation",
]

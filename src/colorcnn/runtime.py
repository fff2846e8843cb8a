"""Where and how tensors are computed: the device, deterministic kernels, and the memory
layout of networks and batches. Training, evaluation and inference all use these."""

from __future__ import annotations

import os
import sys

import torch
import torch.utils.deterministic

from colorcnn.errors import ColorcnnError


def resolve_device(name: str | torch.device) -> torch.device:
    """ "cpu", "cuda", "cuda:N" or "auto" (a GPU where torch sees one) as a torch.device."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ColorcnnError(f"device {name!r} was asked for, but this PyTorch sees no CUDA GPU")
    try:
        return torch.device(name)
    except RuntimeError as error:
        raise ColorcnnError(
            f"unknown device {name!r}; expected cpu, cuda, cuda:N or auto"
        ) from error


def set_determinism(enabled: bool) -> None:
    """Deterministic kernels (a seed gives the same metrics), or the fastest ones."""
    if enabled:
        # cuBLAS needs this to be deterministic; it must be set before the first CUDA call.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    # In deterministic mode torch by default also fills every new tensor with NaN, to expose
    # reads of memory no kernel wrote: a debugging aid that cost 15 ms of a 150 ms UNet
    # training step here (2300 fills per 10 steps instead of 60), and changes no result.
    torch.utils.deterministic.fill_uninitialized_memory = False
    set_flag = getattr(torch._C, "_set_deterministic_algorithms", None)
    if set_flag is None or "torch._inductor.config" in sys.modules:
        torch.use_deterministic_algorithms(enabled, warn_only=True)
    else:
        # The public call also sets torch.compile's flag, and importing the compiler's
        # configuration for it costs 1.4-2.6 s of every start here; colorcnn never compiles.
        set_flag(enabled, warn_only=True)
    torch.backends.cudnn.benchmark = not enabled


def fast_layout(value: torch.nn.Module | torch.Tensor) -> torch.nn.Module | torch.Tensor:
    """Channels-last (NHWC) memory for a network or a 4-D batch: oneDNN's and cuDNN's
    convolutions run faster on it (benchmarks/speed.py on 2 CPU cores: 1.33x for the CNN and
    the PhotoUNet, about even for the course UNet); the values are the same."""
    if isinstance(value, torch.nn.Module):
        return value.to(memory_format=torch.channels_last)
    return value.contiguous(memory_format=torch.channels_last) if value.ndim == 4 else value

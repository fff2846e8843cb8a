"""Settings of a training run, stored as config.json in the run folder and in checkpoints,
and the rules by which a run continues from its last checkpoint."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from colorcnn.color.abbins import ANNEALED_T, positive_temperature
from colorcnn.color.palette import DEFAULT_NUM_COLOURS
from colorcnn.data.datasets import DataSettings
from colorcnn.errors import ColorcnnError, SettingError
from colorcnn.formulations import check_target, default_target, list_formulations
from colorcnn.formulations.colour import REGRESSION_LOSSES
from colorcnn.formulations.superres import check_scale
from colorcnn.runtime import check_precision
from colorcnn.trained.checkpoint import Checkpoint, load_checkpoint

TASKS = ("colorize", "superres")
# Hundreds of ab bins as the width of the course's last layers would cost 30 times the rest
# of the network; above this many outputs the last layers keep this width instead.
WIDE_OUTPUT_COLOUR_WIDTH = 32
# What continuing a run may change; every other setting is the run's own. `data` is the
# folder its images now lie in (the other data settings stay), `out` where the run now lies.
RESUMABLE = ("epochs", "data", "device", "out")


@dataclass
class TrainConfig:
    model: str = "unet"  # a registered model name (`colorcnn models`)
    data: DataSettings = field(default_factory=DataSettings)  # where the images come from
    # and which of them; its seed is the run's one seed (the data, the palette, the weights)
    epochs: int = 25  # the course trains for 25
    batch_size: int = 100
    lr: float = 0.001  # Adam's learning rate
    kernel: int = 3  # convolution kernel size
    num_filters: int | None = None  # NF; None keeps the model variant's own
    num_colours: int = DEFAULT_NUM_COLOURS  # palette size K
    palette_file: str | None = None  # a fixed palette (.npy or JSON) instead of k-means
    colour_width: int | None = None  # width of the last layers; None: the output's, but at
    # most WIDE_OUTPUT_COLOUR_WIDTH when there are more outputs than that (ab-bins)
    target: str | None = None  # palette-rgb, ab-bins, ab-regression, rgb-regression,
    # superres-palette, superres-rgb; None: the task's and the model's own
    task: str = "colorize"  # or "superres": the same networks, upscaling colour images
    scale: int = 4  # superres: the low-resolution image is the full one pooled by this
    temperature: float = ANNEALED_T  # annealed-mean temperature of ab-bins
    regression_loss: str = "huber"  # ab-regression's loss: huber, l1 or mse
    frozen_epochs: int = 0  # pretrained-encoder models: epochs that train the decoder alone
    # before the encoder is fine-tuned too; 0 fine-tunes from the start
    encoder_lr_scale: float = 0.1  # pretrained-encoder models: the encoder's learning rate
    # as a share of lr, so that fine-tuning adjusts its ImageNet features rather than erase them
    rebalance: bool = True  # ab-bins: weight rare colours up (lambda 0.5, sigma 5)
    hints: bool = False  # ab-bins, ab-regression: take colour hints, trained on hints
    # simulated from the truth (Zhang et al. 2017); without hints it colourizes on its own
    init_from: str | None = None  # start from this trained model's weights (a shipped name,
    # run folder or checkpoint) where they fit; what it lacks starts at zero (hint inputs)
    out: str = "runs/unet"  # run folder: metrics, pictures, checkpoints
    shuffle_each_epoch: bool = False  # the course walks the once-shuffled set in order
    picture_every: int = 1  # epochs between prediction grids; 0 turns them off
    device: str = "cpu"  # "cpu", "cuda", "cuda:N", or "auto"
    deterministic: bool = True  # deterministic kernels, so a seed gives the same metrics
    channels_last: bool = True  # NHWC activations: faster convolutions (benchmarks/speed.py)
    precision: str = "auto"  # fp32, bf16, fp16 (CUDA) or auto: bf16 where the hardware has
    # it (CUDA, CPUs with AMX or AVX512-BF16), else fp32. A run stores the one it resolved
    # to, and a resumed run keeps it.

    def __post_init__(self) -> None:
        if not isinstance(self.data, DataSettings):
            raise TypeError(
                f"data expects DataSettings, got {type(self.data).__name__}; for example "
                "TrainConfig(data=DataSettings(data='path/to/cifar10', category='horse'))"
            )
        self.data = self.data.with_absolute_paths()  # runs resume and evaluate from anywhere
        if self.palette_file is not None:
            self.palette_file = str(Path(self.palette_file).expanduser().absolute())
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "kernel": self.kernel}
        positive["num_colours"] = self.num_colours
        if self.num_filters is not None:
            positive["num_filters"] = self.num_filters
        if self.colour_width is not None:
            positive["colour_width"] = self.colour_width
        for name, value in positive.items():
            if value < 1:
                raise SettingError(f"`{name}` must be a positive integer, got {value}")
        if self.frozen_epochs < 0:
            raise SettingError(f"`frozen_epochs` must be 0 or more, got {self.frozen_epochs}")
        if not self.encoder_lr_scale > 0:
            raise SettingError(
                f"`encoder_lr_scale` must be a positive number, got {self.encoder_lr_scale}"
            )
        if self.num_colours < 2:
            raise SettingError(f"`num_colours` must be at least 2, got {self.num_colours}")
        if not self.lr > 0:
            raise SettingError(f"`lr` must be a positive number, got {self.lr}")
        if self.target is not None:
            check_target(self.target)
        positive_temperature(self.temperature)
        if self.regression_loss not in REGRESSION_LOSSES:
            raise SettingError(
                f"`regression_loss` must be one of {', '.join(REGRESSION_LOSSES)}, "
                f"got {self.regression_loss!r}"
            )
        if self.task not in TASKS:
            raise SettingError(f"`task` must be one of {', '.join(TASKS)}, got {self.task!r}")
        target = self.target or default_target("classification", self.data.dataset, self.task)
        superres_targets = list_formulations("superres")
        if (target in superres_targets) != (self.task == "superres"):
            raise SettingError(
                f"`target` {target} does not fit `task` {self.task}; super-resolution "
                f"targets are {', '.join(superres_targets)}"
            )
        if self.task == "superres":
            check_scale(self.scale)
        elif self.scale != 4:
            raise SettingError("`scale` applies to `task` superres only")
        if self.regression_loss != "huber" and target != "ab-regression":
            raise SettingError(
                f"`regression_loss` applies to `target` ab-regression only, not {target}"
            )
        if self.temperature != ANNEALED_T and target != "ab-bins":
            raise SettingError(f"`temperature` applies to `target` ab-bins only, not {target}")
        check_precision(self.precision)
        if self.picture_every < 0:
            raise SettingError(f"`picture_every` must be 0 or more, got {self.picture_every}")
        if self.hints and target not in ("ab-bins", "ab-regression"):
            raise SettingError(
                f"`hints` apply to `target` ab-bins and ab-regression only, not {target}"
            )

    @property
    def seed(self) -> int:
        """The run's one seed: the data's shuffle and crops, the palette's k-means, the
        weights and the per-epoch orders all start from it (it lives in `data`)."""
        return self.data.seed

    def resolved_colour_width(self, out_channels: int) -> int | None:
        if self.colour_width is not None:
            return self.colour_width
        return WIDE_OUTPUT_COLOUR_WIDTH if out_channels > WIDE_OUTPUT_COLOUR_WIDTH else None

    def to_dict(self) -> dict:
        return asdict(self)  # the data settings nested under "data"

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """Settings from `to_dict`, or from the flat dicts of earlier versions (their
        config.json and checkpoints held the data settings among the others), so that
        their runs still resume. Names no longer known are left out."""
        data = values.get("data")
        if not isinstance(data, dict):  # flat: "data" is the folder, beside the others
            data = values
        names = {setting.name for setting in fields(cls)} - {"data"}
        if "precision" not in values:  # runs from before mixed precision trained in fp32
            values = {**values, "precision": "fp32"}
        return cls(
            data=DataSettings.from_dict(data),
            **{key: value for key, value in values.items() if key in names},
        )


def read_last_checkpoint(run_folder: str | Path, parameter: str = "run_folder") -> Checkpoint:
    """The `last` checkpoint of a run folder, which a resumed run continues from;
    `parameter` names the argument that gave the folder, for the message."""
    if not Path(run_folder).is_dir():
        raise SettingError(
            f"`{parameter}` expects a run folder made by `colorcnn train` or fit(), "
            f"got {run_folder}"
        )
    return load_checkpoint(run_folder, prefer="last")


def continued_config(
    info: dict,
    run_folder: str | Path,
    epochs: int | None = None,
    data: str | None = None,
    device: str | None = None,
) -> TrainConfig:
    """The settings a run continues with, from its last checkpoint's description `info`:
    the run's own, but for those of RESUMABLE that are given."""
    try:
        saved = TrainConfig.from_dict(info["train_config"])
        done = info["epoch"] + 1
    except (KeyError, TypeError) as error:
        raise ColorcnnError(
            f"{run_folder}: the last checkpoint cannot be resumed (its description lacks {error})"
        ) from error
    budget = saved.epochs if epochs is None else epochs
    if budget <= done:
        asked = "" if epochs is None else f", got {epochs}"
        raise SettingError(
            f"{run_folder} has trained {done} epochs (of {saved.epochs} planned); expected "
            f"`epochs` above {done} to continue it{asked}"
        )
    changes: dict = {"epochs": budget, "out": str(run_folder)}
    if device is not None:
        changes["device"] = device
    if data is not None:
        changes["data"] = dataclasses.replace(saved.data, data=data)
    return dataclasses.replace(saved, **changes)


def resumed_config(
    run_folder: str | Path,
    *,
    epochs: int | None = None,
    data: str | None = None,
    device: str | None = None,
) -> TrainConfig:
    """The settings to continue the run in `run_folder` with, to pass to
    fit(config, resume=True): the run's own, but for those given: the epochs to train in
    all (None: the run's own budget), the folder its images now lie in, the device.
    For example, fit(resumed_config("runs/unet", epochs=40), resume=True) trains the run
    in runs/unet on to 40 epochs.
    """
    checkpoint = read_last_checkpoint(run_folder)
    return continued_config(checkpoint.info, run_folder, epochs, data, device)

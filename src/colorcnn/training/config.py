"""Settings of a training run; stored as config.json in the run folder and in checkpoints."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

from colorcnn.color.abbins import ANNEALED_T, positive_temperature
from colorcnn.color.palette import DEFAULT_NUM_COLOURS
from colorcnn.data.datasets import DataSettings
from colorcnn.data.photos import DEFAULT_CROP, DEFAULT_CROPS_PER_PHOTO
from colorcnn.errors import ColorcnnError
from colorcnn.formulations import check_target, default_target, list_formulations
from colorcnn.formulations.colour import REGRESSION_LOSSES
from colorcnn.formulations.superres import check_scale

TASKS = ("colorize", "superres")
# Hundreds of ab bins as the width of the course's last layers would cost 30 times the rest
# of the network; above this many outputs the last layers keep this width instead.
WIDE_OUTPUT_COLOUR_WIDTH = 32


@dataclass
class TrainConfig:
    model: str = "unet"  # a registered model name (`colorcnn models`)
    data: str | None = None  # folder of CIFAR-10; None downloads the official archive
    category: str = "horse"  # class name or index, or "all"
    dataset: str = "cifar10"  # "cifar10", "photos" (random crops of a photo folder) or
    # "photos+cifar10" (those crops plus CIFAR-10 images of every class)
    crop_size: int = DEFAULT_CROP  # photos: crop side in pixels
    crops_per_photo: int = DEFAULT_CROPS_PER_PHOTO  # photos: random crops per training photo
    cifar_data: str | None = None  # photos+cifar10: CIFAR-10 folder; None = official download
    cifar_images: int = 5000  # photos+cifar10: CIFAR-10 training images added to the crops
    epochs: int = 25  # the course trains for 25
    batch_size: int = 100
    lr: float = 0.001  # Adam's learning rate
    seed: int = 0  # seeds the data shuffle, the palette's k-means and the weights
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
    out: str = "runs/unet"  # run folder: metrics, pictures, checkpoints
    shuffle_each_epoch: bool = False  # the course walks the once-shuffled set in order
    picture_every: int = 1  # epochs between prediction grids; 0 turns them off
    device: str = "cpu"  # "cpu", "cuda", "cuda:N", or "auto"
    deterministic: bool = True  # deterministic kernels, so a seed gives the same metrics
    channels_last: bool = True  # NHWC activations: faster convolutions (benchmarks/speed.py)

    def __post_init__(self) -> None:
        if self.data is not None:  # runs can be resumed and evaluated from anywhere
            self.data = str(Path(self.data).expanduser().absolute())
        if self.cifar_data is not None:
            self.cifar_data = str(Path(self.cifar_data).expanduser().absolute())
        if self.palette_file is not None:
            self.palette_file = str(Path(self.palette_file).expanduser().absolute())
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "kernel": self.kernel}
        positive["num_colours"] = self.num_colours
        positive["crop_size"] = self.crop_size
        positive["crops_per_photo"] = self.crops_per_photo
        if self.num_filters is not None:
            positive["num_filters"] = self.num_filters
        if self.colour_width is not None:
            positive["colour_width"] = self.colour_width
        for name, value in positive.items():
            if value < 1:
                raise ColorcnnError(
                    f"{name.replace('_', '-')} must be a positive integer, got {value}"
                )
        if self.frozen_epochs < 0:
            raise ColorcnnError(f"frozen-epochs must be 0 or more, got {self.frozen_epochs}")
        if not self.encoder_lr_scale > 0:
            raise ColorcnnError(
                f"encoder-lr-scale must be a positive number, got {self.encoder_lr_scale}"
            )
        if self.num_colours < 2:
            raise ColorcnnError(f"num-colours must be at least 2, got {self.num_colours}")
        if not self.lr > 0:
            raise ColorcnnError(f"lr must be a positive number, got {self.lr}")
        if self.target is not None:
            check_target(self.target)
        positive_temperature(self.temperature)
        if self.regression_loss not in REGRESSION_LOSSES:
            raise ColorcnnError(
                f"regression-loss must be one of {', '.join(REGRESSION_LOSSES)}, "
                f"got {self.regression_loss!r}"
            )
        if self.task not in TASKS:
            raise ColorcnnError(f"task must be one of {', '.join(TASKS)}, got {self.task!r}")
        target = self.target or default_target("classification", self.dataset, self.task)
        superres_targets = list_formulations("superres")
        if (target in superres_targets) != (self.task == "superres"):
            raise ColorcnnError(
                f"--target {target} does not fit --task {self.task}; super-resolution "
                f"targets are {', '.join(superres_targets)}"
            )
        if self.task == "superres":
            check_scale(self.scale)
        elif self.scale != 4:
            raise ColorcnnError("--scale applies to --task superres only")
        if self.regression_loss != "huber" and target != "ab-regression":
            raise ColorcnnError(
                f"--regression-loss applies to --target ab-regression only, not {target}"
            )
        if self.temperature != ANNEALED_T and target != "ab-bins":
            raise ColorcnnError(f"--temperature applies to --target ab-bins only, not {target}")
        if self.dataset != "cifar10" and self.category != "horse":
            raise ColorcnnError(
                f"--category applies to the cifar10 dataset only, not {self.dataset}"
            )
        if self.picture_every < 0:
            raise ColorcnnError(f"picture-every must be 0 or more, got {self.picture_every}")

    def resolved_colour_width(self, out_channels: int) -> int | None:
        if self.colour_width is not None:
            return self.colour_width
        return WIDE_OUTPUT_COLOUR_WIDTH if out_channels > WIDE_OUTPUT_COLOUR_WIDTH else None

    def data_settings(self) -> DataSettings:
        return DataSettings(
            self.data, self.category, self.seed, self.dataset, self.crop_size,
            self.crops_per_photo, self.cifar_data, self.cifar_images,
        )  # fmt: skip

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        known = {field.name for field in fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})

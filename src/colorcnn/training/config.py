"""Settings of a training run; stored as config.json in the run folder and in checkpoints."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from colorcnn.color.palette import DEFAULT_NUM_COLOURS
from colorcnn.errors import ColorcnnError


@dataclass
class TrainConfig:
    model: str = "unet"  # a registered model name (`colorcnn models`)
    data: str | None = None  # folder of CIFAR-10; None downloads the official archive
    category: str = "horse"  # class name or index, or "all"
    epochs: int = 25  # the course trains for 25
    batch_size: int = 100
    lr: float = 0.001  # Adam's learning rate
    seed: int = 0  # seeds the data shuffle, the palette's k-means and the weights
    kernel: int = 3  # convolution kernel size
    num_filters: int | None = None  # NF; None keeps the model variant's own
    num_colours: int = DEFAULT_NUM_COLOURS  # palette size K
    out: str = "runs/unet"  # run folder: metrics, pictures, checkpoints
    shuffle_each_epoch: bool = False  # the course walks the once-shuffled set in order
    picture_every: int = 1  # epochs between prediction grids; 0 turns them off
    device: str = "cpu"  # "cpu", "cuda", or "auto"
    deterministic: bool = True  # deterministic kernels, so a seed gives the same metrics

    def __post_init__(self) -> None:
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "kernel": self.kernel}
        positive["num_colours"] = self.num_colours
        if self.num_filters is not None:
            positive["num_filters"] = self.num_filters
        for name, value in positive.items():
            if value < 1:
                raise ColorcnnError(
                    f"{name.replace('_', '-')} must be a positive integer, got {value}"
                )
        if self.num_colours < 2:
            raise ColorcnnError(f"num-colours must be at least 2, got {self.num_colours}")
        if not self.lr > 0:
            raise ColorcnnError(f"lr must be a positive number, got {self.lr}")
        if self.picture_every < 0:
            raise ColorcnnError(f"picture-every must be 0 or more, got {self.picture_every}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        known = {field.name for field in fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})

"""Data-parallel training: torchrun with two CPU processes (gloo) against one process."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import free_port
from safetensors.torch import load_file

SCRIPT = """
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors.torch import save_file

from colorcnn.data import DataSettings
from colorcnn.training import TrainConfig, fit

out, data = Path(sys.argv[1]), sys.argv[2]
# Plain SGD instead of Adam for this comparison: Adam's first steps are sign(gradient),
# which turns rounding noise in near-zero gradients into full steps; SGD keeps the
# comparison about the gradients themselves.
torch.optim.Adam = lambda parameters, lr, **_: torch.optim.SGD(parameters, lr=0.05)

# Record that the steps go through torch's DistributedDataParallel.
wrap = torch.nn.parallel.DistributedDataParallel.__init__


def recording_wrap(self, *args, **kwargs):
    (out / f"ddp_rank{dist.get_rank()}").touch()
    wrap(self, *args, **kwargs)


torch.nn.parallel.DistributedDataParallel.__init__ = recording_wrap


def keep(model):
    rank = dist.get_rank() if dist.is_initialized() else 0
    state = {key: value.contiguous() for key, value in model.state_dict().items()}
    save_file(state, str(out / f"weights_rank{rank}.safetensors"))


# 100 training images in batches of 99: the shares are 50 and 49 images, and in the last
# batch 1 and 0, so one process joins a step with no images at all.
config = TrainConfig(
    model="unet", data=DataSettings(data, category="all"), epochs=1, batch_size=99,
    num_colours=6, shuffle_each_epoch=True, picture_every=0, out=str(out / "run"),
    precision=sys.argv[3],
)
fit(config, show_progress=False, finished=keep)
"""


def _torchrun(processes: int, *args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(processes),
            "--master-addr", "127.0.0.1", "--master-port", str(free_port()), *args]  # fmt: skip


ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


# bf16 rounds every convolution's output to 8 bits of mantissa, in a different order in
# each process's share: the two runs then agree to bf16's resolution, not fp32's.
WEIGHT_TOLERANCE = {"fp32": 2e-5, "bf16": 2e-2}
LOSS_TOLERANCE = {"fp32": 1e-4, "bf16": 2e-2}


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_two_processes_match_one_with_the_same_global_batch(
    tiny_cifar: Path, tmp_path, precision: str
) -> None:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    single, double = tmp_path / "single", tmp_path / "double"
    single.mkdir()
    double.mkdir()
    subprocess.run([sys.executable, str(script), str(single), str(tiny_cifar), precision],
                   env=ENV, check=True, capture_output=True)  # fmt: skip
    subprocess.run(_torchrun(2, str(script), str(double), str(tiny_cifar), precision), env=ENV,
                   check=True, capture_output=True)  # fmt: skip
    assert (double / "ddp_rank0").is_file() and (double / "ddp_rank1").is_file()
    assert not (single / "ddp_rank0").exists()  # one process trains without a wrapper
    rank0 = load_file(double / "weights_rank0.safetensors")
    rank1 = load_file(double / "weights_rank1.safetensors")
    alone = load_file(single / "weights_rank0.safetensors")
    assert rank0.keys() == rank1.keys() == alone.keys()
    tolerance = WEIGHT_TOLERANCE[precision]
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), f"ranks differ at {key}"
        assert torch.allclose(rank0[key].double(), alone[key].double(), atol=tolerance), key
    # Only rank 0 wrote the run, and its metrics follow the single process's.
    metrics = [
        json.loads(line) for line in (double / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    expected = [
        json.loads(line) for line in (single / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert len(metrics) == len(expected) == 1
    for got, want in zip(metrics, expected, strict=True):
        assert abs(got["train_loss"] - want["train_loss"]) < LOSS_TOLERANCE[precision]
        assert abs(got["val_loss"] - want["val_loss"]) < LOSS_TOLERANCE[precision]


@pytest.mark.slow
def test_torchrun_drives_the_command_line(tiny_cifar: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    finished = subprocess.run(
        _torchrun(2, "-m", "colorcnn", "train", "--data", str(tiny_cifar), "--category", "all",
                  "--epochs", "1", "--batch-size", "10", "--num-colours", "6", "--out", str(run),
                  "--no-progress"),
        env=ENV, capture_output=True, text=True,
    )  # fmt: skip
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert finished.stdout.count("Training unet") == 1  # one voice: rank 0
    assert "x 2 processes" in finished.stdout
    assert (run / "checkpoints" / "best.safetensors").is_file()


@pytest.fixture
def one_process_group(tmp_path: Path):
    """A real gloo process group of one process, in this process: the all-reduces run, and
    a global batch is this process's batch, so nn.BatchNorm2d is the reference."""
    import torch.distributed as dist

    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    yield
    dist.destroy_process_group()


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("offset", [0.0, 1000.0])  # a large mean must not cost digits
def test_shared_batch_norm_equals_batch_norm_on_one_process(
    one_process_group, layout: torch.memory_format, offset: float, affine: bool, device: str
) -> None:
    from colorcnn.training.distributed import DistributedBatchNorm2d

    torch.manual_seed(0)
    # The reference is torch's own batch norm in float64 (in float32, torch's channels-last
    # kernel is itself 1.6e-4 off at offset 1000, ten times the shared version's error).
    reference = torch.nn.BatchNorm2d(5, affine=affine).double().to(device)
    if affine:
        with torch.no_grad():
            reference.weight.uniform_(0.5, 2.0)
            reference.bias.uniform_(-1.0, 1.0)
    shared = DistributedBatchNorm2d(5, affine=affine).to(device)
    shared.load_state_dict({key: value.float() for key, value in reference.state_dict().items()})
    x = (torch.randn(6, 5, 7, 9, dtype=torch.float64) * 3 + offset).float().to(device)
    upstream = torch.randn(6, 5, 7, 9, device=device)
    results = []
    for module, dtype in ((reference, torch.float64), (shared, torch.float32)):
        given = x.to(dtype).contiguous(memory_format=layout).requires_grad_(True)
        output = module(given)
        (output * upstream.to(dtype)).sum().backward()
        grads = (module.weight.grad, module.bias.grad) if affine else ()
        results.append((output, given.grad, *grads))
    for got, want in zip(results[1], results[0], strict=True):
        torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-4)
    # Running statistics are float32 against float64: equal to float32's resolution.
    for got, want in ((shared.running_mean, reference.running_mean),
                      (shared.running_var, reference.running_var)):  # fmt: skip
        torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-6)
    assert shared.num_batches_tracked == reference.num_batches_tracked == 1


def test_a_data_parallel_step_is_the_plain_step_on_one_process(one_process_group) -> None:
    from colorcnn.training.distributed import data_parallel, summed

    torch.manual_seed(0)
    plain = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.ReLU(), torch.nn.Conv2d(3, 1, 1))
    wrapped_network = copy.deepcopy(plain)
    wrapped = data_parallel(wrapped_network, torch.device("cpu"))
    assert isinstance(wrapped, torch.nn.parallel.DistributedDataParallel)
    x = torch.randn(4, 2, 8, 8)
    plain(x).square().mean().backward()
    wrapped(x).square().mean().backward()
    for mine, theirs in zip(wrapped_network.parameters(), plain.parameters(), strict=True):
        torch.testing.assert_close(mine.grad, theirs.grad, rtol=0, atol=0)
    assert summed(2.5, torch.device("cpu")) == 2.5  # one process: the sum is its own


def test_a_thawed_encoder_gets_a_new_wrapper(one_process_group) -> None:
    from colorcnn.training.loop import TrainingState

    network = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Conv2d(2, 1, 1))
    state = TrainingState(network, torch.optim.SGD(network.parameters(), lr=0.1), [])
    network[0].requires_grad_(False)  # a frozen encoder
    frozen = state.parallel_model(torch.device("cpu"))
    assert state.parallel_model(torch.device("cpu")) is frozen  # kept while nothing changes
    network[0].requires_grad_(True)
    thawed = state.parallel_model(torch.device("cpu"))
    assert thawed is not frozen
    thawed(torch.randn(2, 1, 6, 6)).sum().backward()
    assert network[0].weight.grad is not None  # the thawed weights train, and are summed


def test_batch_norm_is_shared_in_fp32_under_bf16(one_process_group) -> None:
    from colorcnn.training.distributed import DistributedBatchNorm2d

    torch.manual_seed(0)
    reference = torch.nn.BatchNorm2d(3)
    shared = DistributedBatchNorm2d(3)
    x = torch.randn(4, 3, 5, 5) * 4 + 100  # a mean bf16 holds to 0.5 only
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = shared(x.bfloat16())
    assert output.dtype == torch.bfloat16
    expected = reference(x.bfloat16().float())
    torch.testing.assert_close(output.float(), expected, atol=0.02, rtol=0.01)
    torch.testing.assert_close(shared.running_mean, reference.running_mean)

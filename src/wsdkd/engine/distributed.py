"""Several GPUs, one process each (DistributedDataParallel under torchrun); one plain process otherwise.

A training stage calls :func:`launch` first. With ``train.devices`` > 1 and as many GPUs visible, the stage
re-executes its own command under ``torch.distributed.run``, which starts one copy per GPU with WORLD_SIZE,
RANK and LOCAL_RANK set; each copy joins the process group and runs the stage as usual. The shared loop
(loop.py) then shards the batches, wraps the model in DDP and reduces its metrics through the helpers below,
which do nothing in a single process, so the trainers need no code of their own for it. Rank 0 alone writes
checkpoints, curves, logs and outputs: the other ranks leave when the last epoch ends (:func:`finish`).
"""

from __future__ import annotations

import datetime
import logging
import os
import sys

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset, DistributedSampler, Sampler

from ..pipeline.errors import UserError

log = logging.getLogger(__name__)

# Rank 0 alone fills the teacher's feature bank while the others wait at a barrier: allow for that.
_TIMEOUT = datetime.timedelta(hours=2)


def launch(devices: int) -> None:
    """Join the process group under torchrun; else, with ``devices`` > 1 GPUs, re-run this command under it."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        _join()
        return
    if devices <= 1:
        return
    visible = torch.cuda.device_count()
    if visible == 0:
        log.warning("train.devices is %d but no CUDA device is visible: training in one process", devices)
        return
    if devices > visible:
        raise UserError(f"params.yaml: train.devices: {devices} GPUs asked for, {visible} visible")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={devices}",
               *sys.argv]
    log.info("relaunching under torchrun: %s", " ".join(command))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, command)  # keeps the PID, so the workflow tool's signals reach torchrun


def _join() -> None:
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))  # "cuda" then names this rank's GPU
        backend = "cpu:gloo,cuda:nccl"  # gloo for CPU tensors (gathered metrics), NCCL for the gradients
    else:
        backend = "gloo"
    dist.init_process_group(backend, timeout=_TIMEOUT)
    if rank() > 0:
        logging.getLogger().setLevel(logging.WARNING)


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def rank_batch_size(batch_size: int) -> int:
    """Each rank's share of ``batch_size``, which stays the global batch (the same gradient as one process)."""
    world = world_size()
    if batch_size % world:
        raise UserError(f"params.yaml: batch_size {batch_size} is not divisible by train.devices ({world})")
    return batch_size // world


def train_sampler(data: Dataset, seed: int) -> DistributedSampler:
    """This rank's share of a shuffled epoch; call ``set_epoch`` each epoch. The order depends on (seed, epoch),
    and in one process it is the permutation torch's RandomSampler draws from a generator seeded the same way."""
    return DistributedSampler(data, num_replicas=world_size(), rank=rank(), shuffle=True, seed=seed)


class Shard(Sampler[int]):
    """Every ``world``-th item from this rank's index, unpadded, so gathered evaluations count each item once."""

    def __init__(self, size: int) -> None:
        self.indices = range(rank(), size, world_size())

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


class _StepModule(nn.Module):
    """The model and its step as one module, so the whole step runs inside DDP's forward (whatever parts of the
    model it calls), which is what DDP's gradient hooks and buffer broadcasts expect."""

    def __init__(self, model: nn.Module, step) -> None:
        super().__init__()
        self.model, self.step = model, step

    def forward(self, images, targets, index) -> dict:
        return self.step(self.model, images, targets, index)


def wrap(model: nn.Module, step):
    """``step`` as a callable ``(model, images, targets, index) -> dict``; under DDP, gradients are averaged.

    DDP copies rank 0's weights to every rank here. ``find_unused_parameters``: some steps use only part of the
    model (stage 1 never runs the classifier).
    """
    if world_size() == 1:
        return step
    device_ids = [torch.cuda.current_device()] if next(model.parameters()).is_cuda else None
    ddp = DistributedDataParallel(_StepModule(model, step), device_ids=device_ids, find_unused_parameters=True)
    return lambda _model, images, targets, index: ddp(images, targets, index)


def seed_epoch(seed: int, epoch: int, generator: torch.Generator) -> None:
    """Under DDP, give each rank its own random draws (flips, scales), from (seed, epoch, rank) only, so a
    resumed run draws as the first did; in one process, leave the checkpointed RNG streams alone."""
    if world_size() > 1:
        value = (seed * 1_000_003 + epoch) * 1_009 + rank()
        torch.manual_seed(value)
        generator.manual_seed(value)


def sync_buffers(model: nn.Module) -> None:
    """Copy rank 0's buffers (batch-norm statistics) to every rank: each updated its own in the last forward."""
    if world_size() > 1:
        for buffer in model.buffers():
            dist.broadcast(buffer, 0)


def sum_all(*values: float) -> list[float]:
    """Each value summed over the ranks."""
    if world_size() == 1:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(tensor)
    return tensor.tolist()


def gather(value) -> list:
    """Every rank's ``value`` (any picklable object), in rank order."""
    if world_size() == 1:
        return [value]
    parts: list = [None] * world_size()
    dist.all_gather_object(parts, value)
    return parts


def finish() -> None:
    """End the process group after training: rank 0 goes on alone (outputs), the other ranks exit here."""
    if world_size() == 1:
        return
    dist.barrier()
    leaving = not is_main()
    dist.destroy_process_group()
    if leaving:
        raise SystemExit(0)

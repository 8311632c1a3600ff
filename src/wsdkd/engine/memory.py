"""How much accelerator memory each stage needs, estimated from the params, and the micro-batch that fits a cap.

Peak GPU memory is what breaks paper-scale runs (VGG16 at 832 px, 500 RoIs through fc6/fc7). The models are
built on PyTorch's ``meta`` device (shapes only: nothing is allocated or computed) and images are run through
the stage's forward pass:

- training stages: the weights, and for the trained parameters their gradients and SGD momentum (the state),
  plus the bytes autograd saves for the backward pass per image (each storage counted once);
- inference (cache_teacher): the weights plus, per image, the largest input + output of any one layer.

Two images are run and their cost halved (PROBE_IMAGES); the per-image cost is then linear in the batch.

Counted in float32, the params' dtype; bf16 autocast (``amp``) keeps many activations at half that, so under
AMP this is an upper bound. Not counted: the CUDA context, cuDNN workspaces and allocator fragmentation
(leave a GB or two of the card for them when setting ``train.memory_cap_gb``), and the gradient buffers of
the backward pass itself, which are freed as it goes.

This module holds the counting and the micro-batch rule; each step estimates its own stages beside its trainer
(``teacher.memory``, ``student.memory``, ``distill.memory``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable

import torch
from torch import nn

from ..pipeline.errors import UserError

GB = 1024 ** 3
STATE_COPIES = 3  # a trained parameter: its value, its gradient and SGD's momentum buffer
FLOAT_BYTES = 4
PROBE_IMAGES = 2  # images run through a stage to measure one's share: batch norm in training refuses a batch of 1x1


@dataclass(frozen=True)
class StageMemory:
    """A stage's estimated memory: ``state_bytes`` once, ``per_image_bytes`` for each image of a batch."""

    state_bytes: int
    per_image_bytes: int

    def peak_bytes(self, images: int) -> int:
        return self.state_bytes + self.per_image_bytes * images


def state_bytes(model: nn.Module, trained: Iterable[nn.Parameter] | None = None) -> int:
    """Weights of ``model`` plus gradient and momentum of the ``trained`` parameters (default: all that learn)."""
    trained = [p for p in model.parameters() if p.requires_grad] if trained is None else list(trained)
    frozen = sum(p.numel() for p in model.parameters()) - sum(p.numel() for p in trained)
    return FLOAT_BYTES * (frozen + STATE_COPIES * sum(p.numel() for p in trained))


def saved_bytes(forward: Callable[[], object], model: nn.Module) -> int:
    """Bytes autograd keeps for the backward pass while ``forward`` runs, each storage once, weights excluded."""
    weights = {p.untyped_storage()._cdata for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage._cdata not in weights:
            seen[storage._cdata] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        forward()
    return sum(seen.values())


def largest_layer_bytes(forward: Callable[[], object], model: nn.Module) -> int:
    """Inference: the largest input + output bytes of any one leaf module while ``forward`` runs (no grad)."""
    largest = [0]

    def hook(_module, inputs, output) -> None:
        tensors = [t for t in (*inputs, output) if isinstance(t, torch.Tensor)]
        largest[0] = max(largest[0], sum(t.numel() * t.element_size() for t in tensors))

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            forward()
    finally:
        for handle in handles:
            handle.remove()
    return largest[0]


def meta_tensor(*shape: int) -> torch.Tensor:
    """Zeros of ``shape`` on the meta device: a shape to run through a model, nothing allocated."""
    return torch.zeros(*shape, device="meta")


def micro_batch_size(memory: StageMemory, batch_size: int, cap_gb: float | None, stage: str) -> int | None:
    """Images per forward/backward pass so that the stage's estimated peak stays within ``cap_gb``; None when
    the whole batch fits (or no cap is set). The gradients of the micro-batches are accumulated into the
    batch's, so the effective batch is still ``batch_size``."""
    if cap_gb is None:
        return None
    room = cap_gb * GB - memory.state_bytes
    fits = math.floor(room / memory.per_image_bytes) if memory.per_image_bytes else batch_size
    if fits < 1:
        raise UserError(f"params.yaml: train.memory_cap_gb: {cap_gb:g} GB cannot hold one image of {stage}: "
                        f"its weights and optimiser state take {memory.state_bytes / GB:.2f} GB and one image "
                        f"{memory.per_image_bytes / GB:.2f} GB more (estimated)")
    return None if fits >= batch_size else fits

"""Intermediate maps of a backbone body at chosen strides, read with forward hooks during one ordinary pass.

FitNets takes its hint from a middle layer (the paper: VGG16's conv3_3, stride 4) and attention transfer reads
three (conv3_3, conv4_3, conv5_3: strides 4, 8, 16). Rather than name layers per backbone, a body is seen as
its sequence of *units* (the leaves of nested Sequential / ModuleList containers, an EfficientNet block run
counting as its blocks) and the map at stride s is the output of the last unit whose output has stride s.
For VGG16 that is exactly conv3_3, conv4_3 and conv5_3 (after their ReLU); for the others the last block of
each stage. Hooking whole blocks, not their insides, keeps a block's expanded inner activations out.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn


def units(module: nn.Module) -> list[nn.Module]:
    """The modules whose outputs are candidate maps, in the order they run."""
    if isinstance(module, (nn.Sequential, nn.ModuleList)):
        return [unit for child in module for unit in units(child)]
    blocks = getattr(module, "blocks", None)
    if isinstance(blocks, nn.ModuleList):
        return units(blocks)
    return [module]


class Taps:
    """After a forward pass inside ``with taps.recording(images):``, ``taps.maps`` holds one map per stride."""

    def __init__(self, body: nn.Module, strides: list[int]) -> None:
        self.body, self.strides = body, sorted(strides)
        self.maps: list[torch.Tensor] = []

    @contextlib.contextmanager
    def recording(self, images: torch.Tensor) -> Iterator["Taps"]:
        size = images.shape[-1]
        last: dict[int, torch.Tensor] = {}

        def keep(_module, _inputs, output) -> None:
            if isinstance(output, torch.Tensor) and output.dim() == 4:
                last[round(size / output.shape[-1])] = output

        handles = [unit.register_forward_hook(keep) for unit in units(self.body)]
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()
        missing = [s for s in self.strides if s not in last]
        if missing:
            raise ValueError(f"the body has no map at stride {missing} (it has {sorted(last)})")
        self.maps = [last[s] for s in self.strides]

"""Device and mixed-precision choice: CUDA (with AMP) when present, the same code on CPU."""

from __future__ import annotations

import contextlib

import torch

from ..pipeline.errors import UserError


def resolve_device(choice: str, key: str) -> torch.device:
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise UserError(f"{key}: 'cuda' asked for, but no CUDA device is visible")
    return torch.device(choice)


def autocast(device: torch.device, enabled: bool):
    """bfloat16 autocast on CUDA when enabled (no loss scaling needed); a no-op on CPU."""
    if device.type == "cuda" and enabled:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()

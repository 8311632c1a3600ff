"""Positive temperatures for the softened predictions of stage 2 (paper Eq. 6-9, METHOD.md section 5).

Two parameterisations, chosen by ``distill.predictions.temperature_parameterisation``:

- ``log`` (ours, the default): the module learns theta = log t and returns t = exp(theta), so t > 0 after any
  update, with no clamp to stall the gradient. Eq. 9 gives dL/dt = sum dL/d(m/t) * (-m / t^2); the optimiser
  sees dL/dtheta = t * dL/dt, the same direction, rescaled by t (a step moves t multiplicatively). t only
  reaches 0 by floating-point underflow (theta below about -87 in float32): a diverged optimiser.
- ``inverse`` (the released code): it learns the scale s = 1/t that Caffe's Scale layer multiplies the logits
  by, and returns t = 1/s. dL/ds = -t^2 * dL/dt: near t = 5 a step in s moves t 25x further than the same step
  in log t would, which is why the released recipe is reproduced with this switch rather than with log t.
  Like Caffe, nothing keeps s positive.

Autograd does the chain rule either way; nothing here is hand-written.
"""

from __future__ import annotations

import math

import torch
from torch import nn

PAPER_INIT = 1.0  # paper 3.3: every temperature starts at 1
PARAMETERISATIONS = ("log", "inverse")


class Temperatures(nn.Module):
    """A vector of ``size`` temperatures t > 0, learnable (a parameter) or fixed (a buffer, no gradient).

    ``forward()`` returns t (size,). The stored value ``theta`` is log t or 1/t (``parameterisation``), under
    the same name either way, so a learnable module's state dict loads into a fixed one and back.
    """

    def __init__(self, size: int, init: float = PAPER_INIT, learnable: bool = True,
                 parameterisation: str = "log") -> None:
        super().__init__()
        if init <= 0:
            raise ValueError(f"a temperature must be positive, got init={init}")
        if parameterisation not in PARAMETERISATIONS:
            raise ValueError(f"unknown temperature parameterisation {parameterisation!r} "
                             f"(expected one of {PARAMETERISATIONS})")
        self.parameterisation = parameterisation
        theta = torch.full((size,), math.log(init) if parameterisation == "log" else 1.0 / init)
        if learnable:
            self.theta = nn.Parameter(theta)
        else:
            self.register_buffer("theta", theta)

    @property
    def learnable(self) -> bool:
        return isinstance(self.theta, nn.Parameter)

    def forward(self) -> torch.Tensor:
        return self.theta.exp() if self.parameterisation == "log" else 1.0 / self.theta

    def extra_repr(self) -> str:
        return f"size={self.theta.numel()}, learnable={self.learnable}, parameterisation={self.parameterisation}"

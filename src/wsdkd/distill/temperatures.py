"""Positive temperatures for the softened predictions of stage 2 (paper Eq. 6-9, METHOD.md section 5).

Parameterisation: the module stores theta = log t and returns t = exp(theta), so t > 0 after any update, with
no clamp to stall the gradient. Eq. 9 gives dL/dt = sum dL/d(m/t) * (-m / t^2); by the chain rule the
optimiser sees dL/dtheta = t * dL/dt, the same direction as Eq. 9's gradient, only rescaled by t (a step moves
t multiplicatively). Autograd does this; nothing here is hand-written. Because that gradient shrinks with t,
t only reaches 0 by floating-point underflow (theta below about -87 in float32), i.e. after a single step of
that size in log space: a diverged optimiser, not a small temperature.
"""

from __future__ import annotations

import math

import torch
from torch import nn

PAPER_INIT = 1.0  # paper 3.3: every temperature starts at 1
RELEASED_TEACHER_T = 0.5  # released code: teacher temperatures fixed here, no gradient
RELEASED_STUDENT_INIT = 5.0  # released code: student temperatures start here (with a 10x learning rate)


class Temperatures(nn.Module):
    """A vector of ``size`` temperatures t > 0, learnable (a parameter) or fixed (a buffer, no gradient).

    ``forward()`` returns t (size,). Either way theta is stored under the same name ``log_t``, so a state dict
    loads into a module of the other kind.
    """

    def __init__(self, size: int, init: float = PAPER_INIT, learnable: bool = True) -> None:
        super().__init__()
        if init <= 0:
            raise ValueError(f"a temperature must be positive, got init={init}")
        log_t = torch.full((size,), math.log(init))
        if learnable:
            self.log_t = nn.Parameter(log_t)
        else:
            self.register_buffer("log_t", log_t)

    @property
    def learnable(self) -> bool:
        return isinstance(self.log_t, nn.Parameter)

    def forward(self) -> torch.Tensor:
        return self.log_t.exp()

    def extra_repr(self) -> str:
        return f"size={self.log_t.numel()}, learnable={self.learnable}"

"""The diagonal Gaussian log-density, written once: the VAE's prior, posterior and importance
weights, and the base density of the flows in the change-of-variables chapter.

:func:`log_normal_pdf` is the public door: it checks its arguments, then evaluates
:func:`normal_log_density`, the formula itself (eq. elbo-log-normal), which inner loops call
directly on tensors they have already checked.
"""

from __future__ import annotations

import math

import torch

from dgm.inputs import check_broadcastable, check_finite

LOG_2PI = math.log(2.0 * math.pi)


def normal_log_density(x: torch.Tensor, mean, logvar) -> torch.Tensor:
    """log N(x; mean, diag(exp(logvar))) summed over the last dimension, without input checks.

    Per coordinate: -1/2 [log(2 pi) + logvar + (x - mean)^2 / exp(logvar)].
    """
    logvar = torch.as_tensor(logvar, dtype=x.dtype, device=x.device)
    return -0.5 * (LOG_2PI + logvar + (x - mean) ** 2 * torch.exp(-logvar)).sum(-1)


def log_normal_pdf(x: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, diag(exp(logvar))), summed over the last dimension.

    The three arguments must broadcast together; the result has their broadcast shape without
    the last dimension. Raises ValueError, saying what to do, for a non-tensor, a NaN or an
    infinity, or shapes that do not broadcast.
    """
    for name, t in (("x", x), ("mean", mean), ("logvar", logvar)):
        check_finite(name, t, "check the data and, if it came from training, lower the "
                     "learning rate.")
    check_broadcastable(x=x, mean=mean, logvar=logvar)
    return normal_log_density(x, mean, logvar)


def standard_normal_log_pdf(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) summed over the last dimension: (..., d) -> (...)."""
    return normal_log_density(z, 0.0, 0.0)

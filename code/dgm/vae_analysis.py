"""Error bars for the VAE experiments: the spread of a stochastic gradient, with a bootstrap
interval for the ratio of two estimators' spreads.

:func:`gradient_variance` returns the trace of a gradient's covariance over n draws of the
noise. To say how sure that number is, the draws themselves are needed. Storing n gradients
of a few hundred thousand parameters is wasteful when only inner products matter: the trace of
the covariance of any reweighting of the draws is a function of their Gram matrix
G[s, t] = <g_s, g_t>, so :func:`gradient_gram` keeps that (n, n) matrix and
:func:`trace_covariance` and :func:`bootstrap_ratio` work from it.

:mod:`dgm.vae` does not import this module, so nothing here enters the key of a stored VAE.
"""

from __future__ import annotations

import torch

from dgm.vae import VAE


def gradient_gram(
    model: VAE,
    loss_fn,
    x: torch.Tensor,
    n: int,
    params: list[torch.Tensor] | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Gram matrix (n, n), float64, of ``n`` gradients of ``loss_fn`` over fresh noise draws.

    One call of ``loss_fn(model, x, generator)`` per draw, so two estimators given generators
    with the same seed see the same noise, draw by draw; ``x`` stays fixed. ``params`` defaults
    to the encoder's parameters.
    """
    if n < 2:
        raise ValueError(f"n must be >= 2 to estimate a spread, got {n}")
    params = list(model.encoder.parameters()) if params is None else list(params)
    rows = []
    for _ in range(n):
        grads = torch.autograd.grad(loss_fn(model, x, generator), params, allow_unused=True)
        grads = [torch.zeros_like(p) if g is None else g for g, p in zip(grads, params,
                                                                          strict=True)]
        rows.append(torch.cat([g.flatten() for g in grads]).double())  # (number of parameters,)
    draws = torch.stack(rows)  # (n, number of parameters)
    return (draws @ draws.T).cpu()  # (n, n)


def gradient_variance(
    model: VAE,
    loss_fn,
    x: torch.Tensor,
    n: int,
    params: list[torch.Tensor] | None = None,
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """Spread of a stochastic gradient over ``n`` independent draws of the noise.

    Returns ``variance``: the trace of the gradient's covariance (the sum over parameters of
    each coordinate's variance, unbiased), ``mean_sq_norm``: the squared norm of the averaged
    gradient, and ``n``. The draws are those of :func:`gradient_gram`.
    """
    gram = gradient_gram(model, loss_fn, x, n, params, generator)
    return {"variance": trace_covariance(gram).item(), "mean_sq_norm": gram.sum().item() / n**2,
            "n": n}


def trace_covariance(gram: torch.Tensor, counts: torch.Tensor | None = None) -> torch.Tensor:
    """Trace of the sample covariance of the draws, from their Gram matrix.

    With counts c_t (how often draw t is used; all ones by default, or one row per bootstrap
    resample, shape (R, n)) and m = sum c_t: (sum_t c_t |g_t|^2 - |sum_t c_t g_t|^2 / m) / (m - 1).
    With all counts one it is the unbiased estimate that :func:`gradient_variance` returns.
    """
    n = gram.shape[0]
    if gram.shape != (n, n):
        raise ValueError(f"gram must be a square (n, n) matrix, got shape {tuple(gram.shape)}")
    if counts is None:
        counts = torch.ones(n, dtype=gram.dtype)
    counts = counts.to(gram.dtype)
    m = counts.sum(-1)
    squares = counts @ gram.diagonal()  # sum_t c_t |g_t|^2
    total = torch.einsum("...s,st,...t->...", counts, gram, counts)  # |sum_t c_t g_t|^2
    return (squares - total / m) / (m - 1)


def bootstrap_ratio(
    gram_a: torch.Tensor,
    gram_b: torch.Tensor,
    replicates: int = 4000,
    level: float = 0.95,
    generator: torch.Generator | None = None,
) -> tuple[float, float, float]:
    """Ratio of the two gradient spreads (a over b), with a percentile bootstrap interval.

    The draws of the two estimators are paired (the same noise, draw by draw), so every bootstrap
    resample takes the same draws for both. Returns (ratio, lower, upper).
    """
    n = gram_a.shape[0]
    if gram_b.shape != gram_a.shape:
        raise ValueError(f"the two Gram matrices differ in shape: {tuple(gram_a.shape)} and "
                         f"{tuple(gram_b.shape)}; draw the same number of gradients for both")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    picks = torch.randint(0, n, (replicates, n), generator=generator)  # (R, n) draw indices
    counts = torch.zeros(replicates, n, dtype=torch.float64).scatter_add_(
        1, picks, torch.ones(replicates, n, dtype=torch.float64)
    )  # (R, n)
    ratios = trace_covariance(gram_a, counts) / trace_covariance(gram_b, counts)  # (R,)
    tail = (1 - level) / 2
    lower, upper = torch.quantile(ratios, torch.tensor([tail, 1 - tail], dtype=torch.float64))
    ratio = (trace_covariance(gram_a) / trace_covariance(gram_b)).item()
    return ratio, lower.item(), upper.item()

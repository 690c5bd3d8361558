"""A variational autoencoder for binarized MNIST, and the bounds it is trained and judged by.

Kingma & Welling (2014), "Auto-Encoding Variational Bayes": the encoder outputs the mean ``mu``
and log-variance ``logvar`` of a diagonal Gaussian q(z|x) = N(mu, diag(sigma^2)), sigma^2 =
exp(logvar); the decoder outputs the logits of independent Bernoulli pixels p(x|z); the prior is
p(z) = N(0, I). Two estimators of the ELBO are implemented: the generic SGVB estimator (their
eq. 6, :func:`sgvb_loss`) and the one with the KL term in closed form (their eq. 10,
:func:`analytic_kl_loss`). :func:`iwae_bound` is the importance-weighted bound of Burda, Grosse &
Salakhutdinov (2016), eq. 8, used to estimate log p(x) on the test set.

Shapes: B is the batch, D the latent size ``z_dim``, P the number of pixels ``x_dim`` (784), K the
number of importance samples.
"""

from __future__ import annotations

import inspect
import math
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from dgm.config import DEVICE, seed_everything, seeded_generator
from dgm.data import dynamic_binarize
from dgm.gaussian import log_normal_pdf, normal_log_density, standard_normal_log_pdf
from dgm.inputs import check_broadcastable, check_finite, check_same_shape, checking, unchecked
from dgm.results import cached
from dgm.training import History, evaluate, fit, warmup_cosine

# ----------------------------------------------------------------------------------------------
# Input checks: a wrong shape or a NaN should fail loudly, at the line that received it.


def _check_finite(name: str, tensor: torch.Tensor) -> None:
    check_finite(
        name, tensor, "check the data and, if it came from training, lower the learning rate."
    )


def check_images(x: torch.Tensor, x_dim: int) -> None:
    """Raise ValueError unless ``x`` is a finite (B, x_dim) batch of pixel values in [0, 1]."""
    if not checking():  # inside a loop whose data was checked at its door
        return
    if not torch.is_tensor(x):
        raise ValueError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 2 or x.shape[1] != x_dim:
        raise ValueError(
            f"x must have shape (batch, {x_dim}), got {tuple(x.shape)}; "
            "flatten images with x.reshape(len(x), -1)"
        )
    if ((x >= 0) & (x <= 1)).all():  # one pass over the batch; NaN fails both comparisons
        return
    _check_finite("x", x)
    raise ValueError(
        f"x must hold pixel values in [0, 1] (Bernoulli likelihood), got values in "
        f"[{x.min().item():.3g}, {x.max().item():.3g}]; divide uint8 images by 255"
    )


# ----------------------------------------------------------------------------------------------
# Densities and divergences (the formulas of the ELBO chapter).


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL( N(mu, diag(exp(logvar))) || N(0, I) ), summed over the last dimension.

    Kingma & Welling (2014), appendix B: -1/2 sum_d (1 + logvar_d - mu_d^2 - sigma_d^2).
    """
    _check_finite("mu", mu)
    _check_finite("logvar", logvar)
    check_same_shape(mu=mu, logvar=logvar)
    return 0.5 * (mu**2 + torch.exp(logvar) - 1.0 - logvar).sum(-1)


def bernoulli_log_likelihood(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """log p(x|z) = sum_p [x_p log pi_p + (1 - x_p) log(1 - pi_p)], pi = sigmoid(logits).

    Computed from the logits (no sigmoid, so no log(0)); summed over the last dimension.
    ``x`` broadcasts against ``logits``: a (B, P) batch scores (K, B, P) logits.
    """
    check_broadcastable(x=x, logits=logits)
    # x log sigmoid(l) + (1 - x) log(1 - sigmoid(l)) = x l - softplus(l), which is minus the
    # binary cross-entropy with logits: one fused pass over the pixels, and no log(0).
    logits, x = torch.broadcast_tensors(logits, x)  # views, no copies
    bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    return -bce.sum(-1)


def reparameterize(
    mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """z = mu + sigma * eps with eps ~ N(0, I) and sigma = exp(logvar / 2).

    Kingma & Welling (2014), section 2.4: the randomness enters through eps alone, so z is
    a differentiable function of mu and logvar and gradients flow back into the encoder.
    """
    _check_finite("mu", mu)
    _check_finite("logvar", logvar)
    check_same_shape(mu=mu, logvar=logvar)
    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
    sigma = torch.exp(0.5 * logvar)
    return mu + sigma * eps


# ----------------------------------------------------------------------------------------------
# The model: an MLP encoder and an MLP decoder.


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers of the given sizes with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class VAE(nn.Module):
    """Encoder x -> (mu, logvar) of q(z|x); decoder z -> Bernoulli logits of p(x|z).

    ``hidden`` lists the encoder's hidden widths, input side first; the decoder mirrors them
    unless ``decoder_hidden`` lists its own (latent side first). The classic model of the
    PyTorch examples is ``VAE(hidden=(400,), z_dim=20)``.
    """

    def __init__(
        self,
        x_dim: int = 784,
        hidden: tuple[int, ...] = (400,),
        z_dim: int = 20,
        decoder_hidden: tuple[int, ...] | None = None,
    ):
        super().__init__()
        hidden = tuple(int(h) for h in hidden)
        if decoder_hidden is None:
            decoder_hidden = tuple(reversed(hidden))
        decoder_hidden = tuple(int(h) for h in decoder_hidden)
        if x_dim < 1 or z_dim < 1 or any(h < 1 for h in hidden + decoder_hidden):
            raise ValueError(
                f"x_dim, z_dim and every hidden width must be positive, got x_dim={x_dim}, "
                f"hidden={hidden}, decoder_hidden={decoder_hidden}, z_dim={z_dim}"
            )
        self.x_dim, self.z_dim = x_dim, z_dim
        self.hidden, self.decoder_hidden = hidden, decoder_hidden
        self.encoder = mlp([x_dim, *hidden, 2 * z_dim])
        self.decoder = mlp([z_dim, *decoder_hidden, x_dim])

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, P) pixels -> mu (B, D), logvar (B, D)."""
        check_images(x, self.x_dim)
        mu, logvar = self.encoder(x).chunk(2, dim=-1)  # (B, 2D) -> 2 x (B, D)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(..., D) latent codes -> (..., P) Bernoulli logits."""
        if z.shape[-1] != self.z_dim:
            raise ValueError(f"z must end in dimension {self.z_dim}, got shape {tuple(z.shape)}")
        _check_finite("z", z)
        return self.decoder(z)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None):
        """Encode, sample one z per image, decode: returns (logits, mu, logvar, z)."""
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar, generator)
        return self.decode(z), mu, logvar, z

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Pixel probabilities (n, P) of the decoder at n draws z ~ p(z) = N(0, I)."""
        p = next(self.parameters())
        z = torch.randn(n, self.z_dim, generator=generator, dtype=p.dtype, device=p.device)
        return torch.sigmoid(self.decode(z))


# ----------------------------------------------------------------------------------------------
# Two estimators of the negative ELBO, and the importance-weighted bound.


def sgvb_loss(model: VAE, x: torch.Tensor, generator: torch.Generator | None = None):
    """Negative ELBO per image (nats) by the generic SGVB estimator, one z per image.

    Kingma & Welling (2014), eq. 6: ELBO ~ log p(x|z) + log p(z) - log q(z|x), z ~ q(z|x).
    """
    logits, mu, logvar, z = model(x, generator)
    log_px_z = bernoulli_log_likelihood(x, logits)  # (B,)
    log_pz = log_normal_pdf(z, torch.zeros_like(z), torch.zeros_like(z))  # (B,)
    log_qz_x = log_normal_pdf(z, mu, logvar)  # (B,)
    return -(log_px_z + log_pz - log_qz_x).mean()


def analytic_kl_loss(model: VAE, x: torch.Tensor, generator: torch.Generator | None = None):
    """Negative ELBO per image (nats) with the KL term in closed form, one z per image.

    Kingma & Welling (2014), eq. 10: ELBO ~ -KL(q(z|x) || p(z)) + log p(x|z), z ~ q(z|x).
    """
    logits, mu, logvar, _ = model(x, generator)
    log_px_z = bernoulli_log_likelihood(x, logits)  # (B,)
    return -(log_px_z - gaussian_kl(mu, logvar)).mean()


def score_function_loss(model: VAE, x: torch.Tensor, generator: torch.Generator | None = None):
    """A surrogate whose encoder gradient is the score-function (REINFORCE) estimate.

    Williams (1992): grad_phi E_q[f(z)] = E_q[f(z) grad_phi log q(z|x)], with f(z) = log p(x, z)
    - log q(z|x) held fixed and z not differentiated. Returns -mean_i f(z_i) log q(z_i|x_i), so
    its gradient with respect to the *encoder* estimates the gradient of the negative ELBO
    (the zero-mean term E_q[grad_phi f] is left out). Its value is not a loss, and it gives the
    decoder no gradient; it exists to measure the estimator's variance.
    """
    mu, logvar = model.encode(x)  # (B, D)
    z = reparameterize(mu, logvar, generator).detach()  # (B, D), no path back to mu, logvar
    with torch.no_grad():
        f = (
            bernoulli_log_likelihood(x, model.decode(z))
            + log_normal_pdf(z, torch.zeros_like(z), torch.zeros_like(z))
            - log_normal_pdf(z, mu, logvar)
        )  # (B,) log p(x, z) - log q(z|x)
    return -(f * log_normal_pdf(z, mu, logvar)).mean()


@torch.inference_mode()
def importance_log_weights(
    model: VAE,
    x: torch.Tensor,
    k: int,
    generator: torch.Generator | None = None,
    max_rows: int = 4096,
) -> torch.Tensor:
    """log w_k = log p(x|z_k) + log p(z_k) - log q(z_k|x) for K draws z_k ~ q(z|x): (K, B).

    Their mean over K is an unbiased estimate of the ELBO; their log-mean-exp is the IWAE bound.
    The K samples are decoded in chunks of at most ``max_rows`` decoder rows, so memory stays
    bounded for K in the thousands. The default keeps a chunk's activations (4,096 x 784 floats
    at most) within a CPU's last-level cache; bench/iwae_eval.py times the chunk sizes against
    each other, and on a 2-core AVX2 machine with a 32 MB cache 1,024-4,096 rows ran fastest.
    """
    if int(k) != k or k < 1:
        raise ValueError(f"k (the number of importance samples) must be an integer >= 1, got {k}")
    k = int(k)
    mu, logvar = model.encode(x)  # (B, D); x is checked here, once
    sigma = torch.exp(0.5 * logvar)
    chunk = max(1, max_rows // max(1, len(x)))
    log_w = []
    with unchecked():  # every chunk's inputs are built from the checked ones
        for start in range(0, k, chunk):
            n = min(chunk, k - start)
            eps = torch.randn((n, *mu.shape), generator=generator, dtype=mu.dtype,
                              device=mu.device)
            z = mu + sigma * eps  # (n, B, D)
            log_px_z = bernoulli_log_likelihood(x, model.decode(z))  # (n, B)
            log_pz = standard_normal_log_pdf(z)  # (n, B): log N(z; 0, I)
            log_qz_x = normal_log_density(z, mu, logvar)  # (n, B): log N(z; mu, sigma^2)
            log_w.append(log_px_z + log_pz - log_qz_x)
    return torch.cat(log_w)  # (K, B)


def iwae_bound(
    model: VAE,
    x: torch.Tensor,
    k: int,
    generator: torch.Generator | None = None,
    max_rows: int = 4096,
) -> torch.Tensor:
    """Importance-weighted lower bound on log p(x) per image, shape (B,), in nats.

    Burda et al. (2016), eq. 8: L_K = log (1/K) sum_k p(x, z_k) / q(z_k|x), z_k ~ q(z|x).
    L_1 is the ELBO, E[L_K] never decreases with K, and L_K tends to log p(x) as K grows.
    """
    log_w = importance_log_weights(model, x, k, generator, max_rows)  # (K, B)
    return torch.logsumexp(log_w, dim=0) - math.log(len(log_w))


def dataset_bounds(
    model: VAE,
    x: torch.Tensor,
    k: int,
    batch_size: int = 100,
    generator: torch.Generator | None = None,
    progress: bool | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image ELBO (mean of the K log-weights) and IWAE bound L_K over a whole data set.

    Returns two (N,) tensors in nats; their negated means are the test -ELBO and the
    importance-weighted estimate of the negative log-likelihood.
    """
    check_images(x, model.x_dim)  # the door: once for the whole set, not once per batch
    model.eval()
    elbo, iwae = [], []
    with unchecked():
        for start in tqdm(range(0, len(x), batch_size), desc=f"IWAE K={k}", leave=False,
                          disable=None if progress is None else not progress):
            log_w = importance_log_weights(model, x[start : start + batch_size], k, generator)
            elbo.append(log_w.mean(0))
            iwae.append(torch.logsumexp(log_w, dim=0) - math.log(k))  # log-mean-exp, stable
    return torch.cat(elbo), torch.cat(iwae)


# ----------------------------------------------------------------------------------------------
# Training recipe used by the book: one function, so that two models differ only in the loss.


@dataclass(frozen=True)
class VAEConfig:
    """Architecture and optimisation budget of one training run."""

    hidden: tuple[int, ...] = (400,)
    z_dim: int = 20
    decoder_hidden: tuple[int, ...] | None = None
    epochs: int = 10
    batch_size: int = 100
    lr: float = 1e-3
    seed: int = 0


def init_output_bias(model: VAE, train_x: torch.Tensor) -> None:
    """Start the decoder at the mean training image: output bias = logit(mean intensity).

    With the last layer's weights near zero at initialisation, the first reconstructions are
    the average digit rather than noise, which shortens the first epoch's plateau.
    """
    p = train_x.mean(0).clamp(1e-3, 1 - 1e-3)  # (P,)
    with torch.no_grad():
        model.decoder[-1].bias.copy_(torch.log(p / (1 - p)))


def train_vae(
    loss_fn,
    train_x: torch.Tensor,
    test_x: torch.Tensor,
    config: VAEConfig,
    progress: bool | None = None,
) -> tuple[VAE, History]:
    """Train a fresh VAE with ``loss_fn`` (:func:`sgvb_loss` or :func:`analytic_kl_loss`).

    ``train_x`` holds grey levels in [0, 1], binarized afresh for every minibatch; ``test_x``
    is an already binarized test set, scored after each epoch by the analytic-KL estimate of the
    -ELBO with the same noise every time. Adam with the book's one schedule
    (:func:`dgm.training.warmup_cosine`: a linear warm-up over the first 10% of the steps, then
    a cosine decay to zero). The seed fixes the initial weights, the order of the minibatches,
    the binarization and the noise, so two runs with the same ``config`` differ only through
    ``loss_fn``. Both data sets are checked here, once; the steps run unchecked
    (:func:`dgm.inputs.unchecked`), and a NaN that training itself produces stops the run at the
    step where the loss turns non-finite.
    """
    for x in (train_x, test_x):  # the door
        check_images(x, train_x.shape[-1])
    generator = seed_everything(config.seed)
    model = VAE(train_x.shape[1], config.hidden, config.z_dim, config.decoder_hidden).to(DEVICE)
    init_output_bias(model, train_x)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, fused=True)
    steps = config.epochs * math.ceil(len(train_x) / config.batch_size)
    scheduler = warmup_cosine(optimizer, steps, warmup=steps // 10)

    def test_loss(m: VAE) -> float:
        noise = seeded_generator(config.seed + 1, DEVICE)
        return evaluate(m, lambda m, b: analytic_kl_loss(m, b, noise), test_x)

    with unchecked():
        history = fit(
            model, optimizer, loss_fn, train_x, config.epochs, config.batch_size, generator,
            transform=lambda batch: dynamic_binarize(batch, generator),
            scheduler=scheduler, evaluate_fn=test_loss, progress=progress,
        )
    model.eval()
    return model, history


def trained_vae(
    loss_fn,
    train_x: torch.Tensor,
    test_x: torch.Tensor,
    config: VAEConfig,
    progress: bool | None = None,
) -> tuple[VAE, History]:
    """:func:`train_vae`, run once per content key and afterwards read from the result store.

    The key (:func:`dgm.results.cached`) covers the loss (by its source), ``config`` (seed
    included), the code of this module and all it imports, both data sets by content, torch's
    version and the device.
    The history returned with stored weights is the one recorded when they were trained.
    """

    def train():
        model, history = train_vae(loss_fn, train_x, test_x, config, progress)
        return {"state": model.state_dict(), "history": asdict(history)}

    loss = inspect.getsource(loss_fn)  # by its code, not its name
    stored = cached(f"vae-{loss_fn.__name__}", train, config=(loss, config), code=("dgm.vae",),
                    data=(train_x, test_x))
    model = VAE(train_x.shape[1], config.hidden, config.z_dim, config.decoder_hidden).to(DEVICE)
    model.load_state_dict(stored["state"])
    return model.eval(), History(**stored["history"])


def stored_dataset_bounds(
    model: VAE, x: torch.Tensor, k: int, batch_size: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """:func:`dataset_bounds` with a fresh generator seeded ``seed``, and its run time in seconds,
    computed once per model (by its weights), data set, K and seed."""

    def evaluate_bounds():
        start = time.perf_counter()
        generator = seeded_generator(seed, DEVICE)
        elbo, iwae = dataset_bounds(model, x, k, batch_size, generator)
        return {"elbo": elbo, "iwae": iwae, "seconds": time.perf_counter() - start}

    weights = tuple(model.state_dict().values())
    stored = cached("vae-bounds", evaluate_bounds, config=(k, batch_size, seed),
                    code=("dgm.vae",), data=(x, *weights))
    return stored["elbo"], stored["iwae"], stored["seconds"]

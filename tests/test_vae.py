"""Tests of dgm.vae: densities against torch.distributions, the reparameterization, the two
ELBO estimators, the importance-weighted bound against quadrature, and every input check; and of
the experiments chapter's error bars (dgm.vae_analysis) and drawn figures (dgm.vae_figures)."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.distributions import Bernoulli, Normal, kl_divergence

from dgm.gaussian import log_normal_pdf
from dgm.plotting import tile
from dgm.vae import (
    VAE,
    VAEConfig,
    analytic_kl_loss,
    bernoulli_log_likelihood,
    gaussian_kl,
    iwae_bound,
    reparameterize,
    score_function_loss,
    sgvb_loss,
    train_vae,
)
from dgm.vae_analysis import bootstrap_ratio, gradient_gram, gradient_variance, trace_covariance
from dgm.vae_figures import computation_graph, interpolation_figure

FLOAT64 = torch.float64


@st.composite
def gaussian_args(draw):
    """Shapes with 0 to 2 batch dimensions and a last dimension of 1 to 6; finite values."""
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=0, max_size=2))) + (
        draw(st.integers(1, 6)),
    )
    seed = draw(st.integers(0, 2**31 - 1))
    scale = draw(st.sampled_from([0.1, 1.0, 5.0]))
    g = torch.Generator().manual_seed(seed)
    x, mean = (scale * torch.randn(shape, generator=g, dtype=FLOAT64) for _ in range(2))
    logvar = 3.0 * torch.randn(shape, generator=g, dtype=FLOAT64)
    return x, mean, logvar


@settings(max_examples=60, deadline=None)
@given(gaussian_args())
def test_log_normal_pdf_matches_torch_distributions(args):
    x, mean, logvar = args
    expected = Normal(mean, torch.exp(0.5 * logvar)).log_prob(x).sum(-1)
    got = log_normal_pdf(x, mean, logvar)
    assert got.shape == x.shape[:-1]
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


@settings(max_examples=60, deadline=None)
@given(gaussian_args())
def test_gaussian_kl_matches_torch_distributions(args):
    _, mu, logvar = args
    q = Normal(mu, torch.exp(0.5 * logvar))
    p = Normal(torch.zeros_like(mu), torch.ones_like(mu))
    expected = kl_divergence(q, p).sum(-1)
    got = gaussian_kl(mu, logvar)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)
    assert (got >= 0).all()


def test_gaussian_kl_is_zero_only_at_the_prior():
    zero = torch.zeros(3, 4, dtype=FLOAT64)
    assert torch.equal(gaussian_kl(zero, zero), torch.zeros(3, dtype=FLOAT64))
    assert (gaussian_kl(zero + 0.1, zero) > 0).all()


def test_log_normal_pdf_broadcasts_samples_against_parameters():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(7, 3, 5, generator=g, dtype=FLOAT64)  # (K, B, D)
    mu, logvar = torch.randn(2, 3, 5, generator=g, dtype=FLOAT64)  # (B, D) each
    got = log_normal_pdf(z, mu, logvar)
    assert got.shape == (7, 3)
    torch.testing.assert_close(got[4], log_normal_pdf(z[4], mu, logvar), rtol=0, atol=0)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 20))
def test_bernoulli_log_likelihood_matches_torch_distributions(seed, p):
    g = torch.Generator().manual_seed(seed)
    logits = 30.0 * torch.randn(3, p, generator=g, dtype=FLOAT64)  # includes saturated logits
    x = torch.bernoulli(torch.full((3, p), 0.5, dtype=FLOAT64), generator=g)
    expected = Bernoulli(logits=logits).log_prob(x).sum(-1)
    torch.testing.assert_close(bernoulli_log_likelihood(x, logits), expected, rtol=1e-10, atol=1e-9)


def test_reparameterize_has_the_right_moments():
    mu = torch.tensor([-2.0, 0.0, 3.0], dtype=FLOAT64)
    logvar = torch.tensor([-1.0, 0.0, 2.0], dtype=FLOAT64)
    n = 200_000
    g = torch.Generator().manual_seed(0)
    z = reparameterize(mu.expand(n, 3), logvar.expand(n, 3), g)  # (n, 3)
    var = torch.exp(logvar)
    # The sample mean is within 5 standard errors; the sample variance within 5 of its own
    # standard errors (Var of s^2 is 2 sigma^4 / (n - 1) for a Gaussian).
    assert ((z.mean(0) - mu).abs() < 5 * torch.sqrt(var / n)).all()
    assert ((z.var(0) - var).abs() < 5 * var * math.sqrt(2 / (n - 1))).all()


def test_reparameterize_gradient_reaches_mu_and_logvar():
    g = torch.Generator().manual_seed(1)
    mu = torch.randn(4, 3, generator=g, dtype=FLOAT64, requires_grad=True)
    logvar = torch.randn(4, 3, generator=g, dtype=FLOAT64, requires_grad=True)
    z = reparameterize(mu, logvar, torch.Generator().manual_seed(7))
    (z**2).sum().backward()
    eps = torch.randn(4, 3, generator=torch.Generator().manual_seed(7), dtype=FLOAT64)
    sigma = torch.exp(0.5 * logvar.detach())
    # d(z^2)/dmu = 2 z;  d(z^2)/dlogvar = 2 z * sigma * eps / 2.
    zd = z.detach()
    torch.testing.assert_close(mu.grad, 2 * zd, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(logvar.grad, zd * sigma * eps, rtol=1e-12, atol=1e-12)


def small_model(seed=0, x_dim=12, z_dim=3):
    torch.manual_seed(seed)
    return VAE(x_dim=x_dim, hidden=(16,), z_dim=z_dim).double()


def binary_batch(b=8, p=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.bernoulli(torch.full((b, p), 0.4, dtype=FLOAT64), generator=g)


def test_vae_shapes():
    model = small_model()
    x = binary_batch()
    logits, mu, logvar, z = model(x)
    assert logits.shape == (8, 12) and mu.shape == logvar.shape == z.shape == (8, 3)
    assert model.decode(torch.zeros(5, 2, 3, dtype=FLOAT64)).shape == (5, 2, 12)
    assert model.sample(6).shape == (6, 12)


def test_sgvb_and_analytic_losses_agree_in_expectation():
    """The two estimators differ by log q(z|x) - log p(z) - KL, whose mean under q is zero."""
    model = small_model()
    x = binary_batch()
    many = x.repeat(100, 1)  # (100 B, P): 100 draws of z per image in one call
    g_a, g_b = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    with torch.no_grad():
        diffs = torch.stack(
            [sgvb_loss(model, many, g_a) - analytic_kl_loss(model, many, g_b) for _ in range(50)]
        )
    # Same epsilon for both: the reconstruction terms cancel and only the KL estimates differ.
    se = diffs.std() / math.sqrt(len(diffs))
    assert diffs.abs().max() > 0  # the two estimators really are different
    assert diffs.mean().abs() < 4 * se


def test_loss_is_the_negative_elbo_per_image():
    model = small_model()
    x = binary_batch()
    g = torch.Generator().manual_seed(5)
    loss = analytic_kl_loss(model, x, g)
    g = torch.Generator().manual_seed(5)
    logits, mu, logvar, _ = model(x, g)
    per_image = -(Bernoulli(logits=logits).log_prob(x).sum(-1) - gaussian_kl(mu, logvar))
    torch.testing.assert_close(loss, per_image.mean(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("loss_fn", [sgvb_loss, analytic_kl_loss])
def test_a_few_optimisation_steps_lower_the_loss(loss_fn):
    model = small_model(seed=2)
    x = binary_batch(b=32, seed=4)

    def averaged_loss():
        g = torch.Generator().manual_seed(11)
        with torch.no_grad():
            return loss_fn(model, x.repeat(200, 1), g)  # (200 B, P): 200 draws per image

    before = averaged_loss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(12)
    for _ in range(60):
        optimizer.zero_grad()
        loss_fn(model, x, g).backward()
        optimizer.step()
    assert averaged_loss() < 0.95 * before


def quadrature_log_px(model: VAE, x: torch.Tensor) -> torch.Tensor:
    """log p(x) = log integral p(x|z) N(z; 0, 1) dz for a 1-D latent, on a fine grid."""
    z = torch.linspace(-12, 12, 48_001, dtype=FLOAT64)[:, None]  # (G, 1)
    dz = z[1, 0] - z[0, 0]
    with torch.no_grad():
        log_joint = bernoulli_log_likelihood(x, model.decode(z[:, None, :]))  # (G, B)
        log_joint = log_joint - 0.5 * (math.log(2 * math.pi) + z**2)
    return torch.logsumexp(log_joint, dim=0) + torch.log(dz)


def test_iwae_bound_is_a_lower_bound_that_tightens_towards_log_px():
    model = VAE(x_dim=6, hidden=(8,), z_dim=1).double()
    x = binary_batch(b=5, p=6, seed=9)
    log_px = quadrature_log_px(model, x)  # (B,)
    g = torch.Generator().manual_seed(0)
    reps = 400
    bound = {k: torch.stack([iwae_bound(model, x, k, g) for _ in range(reps)]) for k in (1, 10)}
    # E[L_1] <= E[L_10] <= log p(x), each with a margin of 4 standard errors.
    for k, values in bound.items():
        se = values.std(0) / math.sqrt(reps)
        assert (values.mean(0) <= log_px + 4 * se).all(), k
    diff = bound[10] - bound[1]
    assert (diff.mean(0) > 0).all()
    # With many samples the bound is within 0.01 nats of log p(x).
    big = iwae_bound(model, x, 200_000, g, max_rows=50_000)
    torch.testing.assert_close(big, log_px, rtol=0, atol=1e-2)


def test_iwae_with_one_sample_is_the_sgvb_elbo():
    model = small_model()
    x = binary_batch()
    l1 = iwae_bound(model, x, 1, torch.Generator().manual_seed(8))
    with torch.no_grad():
        elbo = -sgvb_loss(model, x, torch.Generator().manual_seed(8))
    torch.testing.assert_close(l1.mean(), elbo, rtol=1e-10, atol=1e-10)


def encoder_gradient(model, loss_fn, x, generator):
    params = list(model.encoder.parameters())
    grads = torch.autograd.grad(loss_fn(model, x, generator), params)
    return torch.cat([g.flatten() for g in grads])  # (number of encoder parameters,)


def test_score_function_gradient_is_unbiased_for_the_encoder():
    """Averaged over many draws, the REINFORCE gradient matches the reparameterized one."""
    model = small_model(seed=3)
    x = binary_batch(b=4, seed=2)
    many = x.repeat(5000, 1)  # (5000 B, P): each call averages 5000 draws per image
    g = torch.Generator().manual_seed(0)
    estimates = {
        loss_fn: torch.stack([encoder_gradient(model, loss_fn, many, g) for _ in range(20)])
        for loss_fn in (score_function_loss, sgvb_loss)
    }  # (20, number of encoder parameters) each
    means = {f: e.mean(0) for f, e in estimates.items()}
    se = torch.sqrt(sum(e.var(0) / len(e) for e in estimates.values()))
    diff = means[score_function_loss] - means[sgvb_loss]
    assert (diff.abs() < 5 * se + 1e-9).all()
    cosine = torch.nn.functional.cosine_similarity(*means.values(), dim=0)
    assert cosine > 0.95


def test_gradient_variance_measures_the_spread_of_the_gradient():
    model = small_model(seed=4)
    x = binary_batch(seed=5)
    stats = gradient_variance(model, sgvb_loss, x, 50, generator=torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(1)
    samples = torch.stack([encoder_gradient(model, sgvb_loss, x, g) for _ in range(50)])
    torch.testing.assert_close(stats["variance"], samples.var(0).sum().item(), rtol=1e-9, atol=0)
    torch.testing.assert_close(stats["mean_sq_norm"], (samples.mean(0) ** 2).sum().item())
    # A deterministic gradient has no spread: the decoder gets nothing from the score function.
    decoder = list(model.decoder.parameters())
    assert gradient_variance(model, score_function_loss, x, 3, decoder)["variance"] == 0.0
    with pytest.raises(ValueError, match="n must be >= 2"):
        gradient_variance(model, sgvb_loss, x, 1)


def prototype_data(n, seed):
    """Grey images (n, 64) near four fixed prototypes: structure a small VAE can learn."""
    g = torch.Generator().manual_seed(seed)
    prototypes = (torch.rand(4, 64, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    which = torch.randint(0, 4, (n,), generator=g)
    return (0.9 * prototypes[which] + 0.1 * torch.rand(n, 64, generator=g)).clamp(0, 1)


def test_train_vae_is_deterministic_and_learns():
    train_x = prototype_data(512, seed=1)
    fixed = torch.Generator().manual_seed(3)
    test_x = torch.bernoulli(prototype_data(128, seed=2), generator=fixed)
    config = VAEConfig(hidden=(32,), z_dim=2, epochs=3, batch_size=64, lr=1e-2, seed=5)
    model, history = train_vae(analytic_kl_loss, train_x, test_x, config, progress=False)
    again, history_again = train_vae(analytic_kl_loss, train_x, test_x, config, progress=False)
    assert history.eval_loss == history_again.eval_loss
    assert history.eval_loss[-1] < history.eval_loss[0]
    assert history.train_loss == history_again.train_loss


def recording(loss_fn, seen):
    """``loss_fn`` that logs each binarized batch and the state of the RNG that draws its noise."""

    def loss(model, x, generator=None):
        rng = torch.get_rng_state() if x.device.type == "cpu" else torch.cuda.get_rng_state()
        seen.append((x.clone(), rng))
        return loss_fn(model, x, generator)

    return loss


def test_the_two_estimators_see_the_same_weights_batches_and_noise():
    train_x = prototype_data(256, seed=1)
    test_x = torch.bernoulli(prototype_data(64, seed=2), generator=torch.Generator().manual_seed(3))
    # lr = 0: the weights stay at their initial values, which must be the same for both.
    config = VAEConfig(hidden=(32,), z_dim=2, epochs=2, batch_size=64, lr=0.0, seed=5)
    seen = {"analytic": [], "sgvb": []}
    a, _ = train_vae(recording(analytic_kl_loss, seen["analytic"]), train_x, test_x, config,
                     progress=False)
    b, _ = train_vae(recording(sgvb_loss, seen["sgvb"]), train_x, test_x, config, progress=False)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)
    # Every step sees the same binarized batch, and eps is drawn from the same RNG state.
    assert len(seen["analytic"]) == len(seen["sgvb"]) == 2 * 4
    for (x_a, rng_a), (x_b, rng_b) in zip(seen["analytic"], seen["sgvb"], strict=True):
        assert torch.equal(x_a, x_b) and torch.equal(rng_a, rng_b)
    assert not torch.equal(seen["sgvb"][0][0], seen["sgvb"][4][0])  # epochs reshuffle, rebinarize


def test_tile_lays_images_out_row_by_row():
    images = torch.arange(5.0)[:, None, None].expand(5, 2, 3)  # (5, 2, 3), image i filled with i
    canvas = tile(images, nrow=2, pad=1)
    assert canvas.shape == (3 * 3 - 1, 2 * 4 - 1)
    assert canvas[0, 0] == 0 and canvas[0, 4] == 1 and canvas[3, 0] == 2 and canvas[6, 0] == 4
    assert canvas[6, 4] == 1.0 and canvas[2, 0] == 1.0  # empty cell and padding stay white
    with pytest.raises(ValueError, match="shape"):
        tile(torch.zeros(4, 4), nrow=2)


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: log_normal_pdf(torch.zeros(2, 3), torch.zeros(2, 4), torch.zeros(2, 3)), "shape"),
        (lambda: gaussian_kl(torch.zeros(2, 3), torch.zeros(3, 2)), "shapes must match"),
        (lambda: reparameterize(torch.zeros(2, 3), torch.zeros(2)), "shapes must match"),
        (lambda: log_normal_pdf(torch.tensor([math.nan]), torch.zeros(1), torch.zeros(1)),
         "^x contains 1 non-finite"),
        (lambda: log_normal_pdf(torch.zeros(1), torch.zeros(1), torch.tensor([-math.inf])),
         "^logvar contains 1 non-finite"),
        (lambda: gaussian_kl(torch.tensor([math.nan]), torch.zeros(1)),
         "^mu contains 1 non-finite"),
        (lambda: reparameterize(torch.zeros(1), torch.tensor([math.nan])),
         "^logvar contains 1 non-finite"),
        (lambda: small_model().encode(torch.zeros(4, 11, dtype=FLOAT64)), "shape"),
        (lambda: small_model().encode(torch.zeros(12, dtype=FLOAT64)), "shape"),
        (lambda: small_model().encode(torch.full((2, 12), 255.0, dtype=FLOAT64)), r"\[0, 1\]"),
        (lambda: small_model().encode(torch.full((2, 12), math.nan, dtype=FLOAT64)), "non-finite"),
        (lambda: small_model().decode(torch.zeros(2, 4, dtype=FLOAT64)), "dimension 3"),
        (lambda: sgvb_loss(small_model(), torch.zeros(2, 5, dtype=FLOAT64)), "shape"),
        (lambda: analytic_kl_loss(small_model(), torch.zeros(2, 5, dtype=FLOAT64)), "shape"),
        (lambda: iwae_bound(small_model(), binary_batch(), 0), r"integer >= 1, got 0$"),
        (lambda: iwae_bound(small_model(), binary_batch(), 2.5), r"integer >= 1, got 2\.5$"),
        (lambda: VAE(hidden=(0,)), "positive"),
        (lambda: log_normal_pdf([0.0], torch.zeros(1), torch.zeros(1)), "torch.Tensor"),
    ],
)
def test_bad_input_raises_a_clear_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# -- error bars and figures of the experiments chapter (dgm.vae_analysis, dgm.vae_figures) ------


def test_gradient_gram_holds_the_inner_products_of_the_draws():
    model = small_model(seed=6)
    x = binary_batch(seed=7)
    gram = gradient_gram(model, sgvb_loss, x, 30, generator=torch.Generator().manual_seed(2))
    g = torch.Generator().manual_seed(2)
    draws = torch.stack([encoder_gradient(model, sgvb_loss, x, g) for _ in range(30)]).double()
    assert gram.shape == (30, 30)
    torch.testing.assert_close(gram, draws @ draws.T, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(trace_covariance(gram).item(), draws.var(0).sum().item(),
                               rtol=1e-9, atol=0)
    with pytest.raises(ValueError, match="n must be >= 2"):
        gradient_gram(model, sgvb_loss, x, 1)


def test_trace_covariance_with_counts_is_the_spread_of_the_resampled_draws():
    g = torch.Generator().manual_seed(3)
    draws = torch.randn(6, 4, generator=g, dtype=FLOAT64)  # (n, parameters)
    counts = torch.tensor([2.0, 0, 1, 0, 3, 0], dtype=FLOAT64)
    repeated = draws.repeat_interleave(counts.long(), dim=0)  # the resample, written out
    got = trace_covariance(draws @ draws.T, counts)
    torch.testing.assert_close(got, repeated.var(0).sum(), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="square"):
        trace_covariance(torch.zeros(3, 2))


def test_bootstrap_ratio_covers_the_true_ratio_and_resamples_pairs():
    g = torch.Generator().manual_seed(4)
    n = 400
    noise = torch.randn(n, 50, generator=g, dtype=FLOAT64)  # shared: the draws are paired
    a, b = 2.0 * noise, noise + 0.1 * torch.randn(n, 50, generator=g, dtype=FLOAT64)
    ratio, lower, upper = bootstrap_ratio(a @ a.T, b @ b.T, generator=g)
    true = 4.0 / 1.01
    assert lower < ratio < upper and lower < true < upper and lower > 1
    # The same draws for both: a ratio of a set of draws to itself has no spread at all.
    same = bootstrap_ratio(a @ a.T, a @ a.T, generator=g)
    assert same == pytest.approx((1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="differ in shape"):
        bootstrap_ratio(a @ a.T, b[:10] @ b[:10].T)
    with pytest.raises(ValueError, match="level"):
        bootstrap_ratio(a @ a.T, b @ b.T, level=1.5)


def test_interpolation_figure_writes_a_weight_under_each_column():
    frames = torch.rand(5, 784)
    fig = interpolation_figure([("a to b", {"one": frames, "two": frames}),
                                ("c to d", {"one": frames})], [0, 0.25, 0.5, 0.75, 1])
    labelled = [ax for ax in fig.axes if any(t.get_text() for t in ax.get_xticklabels())]
    assert len(fig.axes) == 3 and len(labelled) == 2  # the last row of each block
    assert [t.get_text() for t in labelled[0].get_xticklabels()] == [
        "0.0", "0.2", "0.5", "0.8", "1.0"]
    plt.close(fig)
    with pytest.raises(ValueError, match="one per weight"):
        interpolation_figure([("a to b", {"one": frames})], [0, 1])


def test_computation_graph_draws():
    fig = computation_graph()
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert "sampled leaf" in texts and "no gradient" in texts
    plt.close(fig)

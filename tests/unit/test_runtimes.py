"""The runtime protocol: every registered runtime package has the whole interface, the
manifest schema names exactly the registered runtimes, and the Core ML delegate reader
refuses damaged or hostile data with one-line errors."""
import inspect
import json
import subprocess
import sys

import pytest

from runtime_py.runtimes import RUNTIMES, RUNTIME_BY_SUFFIX
from runtime_py.runtimes.coreml.delegate import unflatten
from runtime_py.errors import PocketError
from schemas import load_schema


MODULE_FUNCTIONS = ("available", "emulated", "describe", "check_structure", "delegation",
                    "set_threads", "profile")


@pytest.mark.parametrize("row", RUNTIMES, ids=[r.name for r in RUNTIMES])
def test_every_runtime_module_implements_the_protocol(row):
    module = row.module()
    for name in MODULE_FUNCTIONS:
        assert callable(getattr(module, name, None)), f"{row.name}.{name}"
    assert isinstance(module.NATIVE, bool)
    assert "threads" in inspect.signature(module.Runner).parameters
    for suffix in row.suffixes:
        assert RUNTIME_BY_SUFFIX[suffix] == row.name


def test_schema_names_exactly_the_registered_runtimes():
    schema = load_schema("manifest")
    enum = schema["properties"]["artifacts"]["items"]["properties"]["runtime"]["enum"]
    assert sorted(enum) == sorted(r.name for r in RUNTIMES)


def test_importing_runtime_py_loads_no_toolchain():
    code = ("import sys, runtime_py, runtime_py.session, runtime_py.runtimes.coreml; "
            "print(sorted(m for m in ('torch', 'coremltools', 'executorch', 'ai_edge_litert') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]" and out.stderr == ""


def _flatten(files: dict[str, bytes], root: str = "lowered_module") -> bytes:
    """A flattened folder in the layout ExecuTorch's CoreMLBackend writes (our own writer,
    to build damaged variants of it)."""
    data, nodes = b"", []

    def add(name: str, tree) -> int:
        nonlocal data
        if isinstance(tree, bytes):
            nodes.append({"children": {}, "dataRegion": {"offset": len(data), "size": len(tree)},
                          "kind": 0, "name": name})
            data += tree
            return len(nodes) - 1
        children = {child: add(child, sub) for child, sub in tree.items()}
        nodes.append({"children": children, "dataRegion": {"offset": 0, "size": 0},
                      "kind": 1, "name": name})
        return len(nodes) - 1

    tree: dict = {}
    for path, content in files.items():
        *folders, leaf = path.split("/")
        node = tree
        for folder in folders:
            node = node.setdefault(folder, {})
        node[leaf] = content
    add(root, tree)
    return data + json.dumps({"nodes": nodes}).encode()[::-1]


def test_unflatten_reads_nested_files():
    files = {"metadata.json": b"{}", "model.mlpackage/Manifest.json": b"m",
             "model.mlpackage/Data/com.apple.CoreML/weights/weight.bin": bytes(range(200))}
    assert unflatten(_flatten(files)) == files


@pytest.mark.parametrize("damage", ["truncated", "escape", "outside", "garbage"])
def test_unflatten_refuses_damaged_or_hostile_data(damage):
    blob = _flatten({"a.bin": b"x" * 64, "b/c.bin": b"y" * 8})
    if damage == "truncated":
        blob = blob[:-20]
    elif damage == "escape":
        blob = _flatten({"../evil": b"x"})
    elif damage == "outside":
        blob = blob.replace(b'46 :"ezis"', b'99999 :"ezis"')
        assert b'99999 :"ezis"' in blob
    else:
        blob = bytes(range(256)) * 4
    with pytest.raises(PocketError, match="not a flattened package"):
        unflatten(blob)


def test_every_program_class_runs_one_sample_or_many():
    from runtime_py.runtimes import coreml, executorch, litert
    from runtime_py.runtimes.coreml.delegate import DelegatedProgram

    for cls in (executorch.Program, DelegatedProgram, litert.Runner, coreml.Runner):
        for method in ("run", "raw_call", "run_samples"):
            assert callable(getattr(cls, method, None)), f"{cls.__name__}.{method}"
    assert callable(coreml._CoreMLPredict.run_samples)     # what coreml.Runner runs on macOS


def test_one_by_one_stacks_each_output():
    import numpy as np

    from runtime_py.runtimes import one_by_one

    def run(inputs):
        assert inputs[0].shape == (1, 2)
        return [inputs[0] * 2, inputs[1].sum(keepdims=True).reshape(1, 1)]

    a, b = one_by_one(run, [np.arange(6.0).reshape(3, 2), np.ones((3, 4))])
    assert a.tolist() == [[0, 2], [4, 6], [8, 10]] and b.tolist() == [[4], [4], [4]]

"""The Core ML program inside an ExecuTorch .pte delegated to Core ML, run where Core ML is not.

ExecuTorch's Core ML delegate (id "CoreMLBackend") hands the runtime one blob per delegate:
its `lowered_module` folder (model.mlpackage, metadata.json with the program's input and
output names, debug maps) flattened into one byte string. Layout, as executorch 1.4.1 writes it (checked in
tests against its own unflatten_directory_contents): the files' bytes back to back, then
a JSON index written back to front, {"nodes": [{"name", "kind": 0 file | 1 folder,
"dataRegion": {"offset", "size"}, "children": {name: node index}}]}; the root is the node
no other node lists as a child.

A program that is one Core ML delegate and nothing else is run by extracting its package
to a private temporary folder and opening it with the Core ML runtime (the interpreter
here, Core ML itself on macOS).
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from runtime_py.runtimes.executorch import pte_file
from runtime_py.errors import PocketError, UnsupportedError, one_line

DELEGATE_ID = "CoreMLBackend"          # ExecuTorch's id of the Core ML delegate
PACKAGE = "model.mlpackage"


def unflatten(blob: bytes) -> dict[str, bytes]:
    """{relative path: contents} of a flattened folder (paths below the root, '/'-joined)."""
    try:
        index, _ = json.JSONDecoder().raw_decode(blob[::-1].decode("latin-1"))
        nodes = index["nodes"]
        children = {i for node in nodes for i in node["children"].values()}
        roots = [i for i in range(len(nodes)) if i not in children]
        if len(roots) != 1:
            raise ValueError(f"{len(roots)} root folders")
        files: dict[str, bytes] = {}
        _walk(nodes, roots[0], "", files, blob, depth=0)
    except (ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError) as exc:
        raise PocketError(f"the Core ML delegate's data is not a flattened package "
                          f"({one_line(exc)})") from None
    return files


def _walk(nodes: list, i: int, prefix: str, files: dict, blob: bytes, depth: int) -> None:
    if depth > 32:
        raise ValueError("folders nested too deep")
    node = nodes[i]
    if node["kind"] == 0:
        region = node["dataRegion"]
        start, size = int(region["offset"]), int(region["size"])
        if start < 0 or size < 0 or start + size > len(blob):
            raise ValueError(f"{prefix or node['name']} lies outside the data")
        files[prefix] = blob[start:start + size]
        return
    for name, child in node["children"].items():
        if not name or name in (".", "..") or any(c in name for c in "/\\\0"):
            raise ValueError(f"unsafe file name {name!r}")
        _walk(nodes, int(child), f"{prefix}/{name}" if prefix else name, files, blob, depth + 1)


def write_files(files: dict[str, bytes], folder: Path) -> None:
    for relative, data in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def embedded_program(path: Path, data: bytes) -> tuple[dict[str, bytes], dict]:
    """(the package's files, metadata.json) of a .pte (`data`: its bytes) that is exactly
    one Core ML delegate; UnsupportedError saying why for any other program."""
    path = Path(path)
    structure = pte_file.describe(path, data)
    if structure["operators"]:
        raise UnsupportedError(
            f"{path.name}: only part of the program is delegated to Core ML (ExecuTorch kernels "
            f"{', '.join(structure['operators'][:5])} run outside it), which the Core ML "
            "emulator cannot chain; run it on macOS/iOS")
    found = pte_file.delegates(path, data=data)
    if len(found) != 1 or found[0].id != DELEGATE_ID:
        names = ", ".join(d.id for d in found) or "none"
        raise UnsupportedError(f"{path.name}: the Core ML emulator runs a program that is one "
                               f"Core ML delegate; this one has {names}")
    files = unflatten(found[0].data)
    if f"{PACKAGE}/Manifest.json" not in files:
        raise PocketError(f"{path.name}: the Core ML delegate holds no {PACKAGE}")
    try:
        meta = json.loads(files.get("metadata.json", b"{}"))
    except ValueError:
        meta = {}
    return {k[len(PACKAGE) + 1:]: v for k, v in files.items() if k.startswith(PACKAGE + "/")}, meta


class DelegatedProgram:
    """A Core ML-delegated .pte run through the Core ML runtime on its embedded program,
    its inputs and outputs wired as the .pte's method wires them to the delegate call."""

    def __init__(self, path: Path, threads: int | None = None, data: bytes | None = None) -> None:
        from runtime_py.runtimes import coreml

        self.path = Path(path)
        data = pte_file.read(self.path) if data is None else data
        files, self.metadata = embedded_program(self.path, data)
        self._folder = tempfile.TemporaryDirectory(prefix="pocket-coreml-delegate-")
        package = Path(self._folder.name) / PACKAGE
        write_files(files, package)
        try:
            self._inner = coreml.Runner(package, threads=threads)
        except PocketError as exc:      # name the .pte, not the temporary package
            raise type(exc)(str(exc).replace(str(package), self.path.name)
                            .replace(PACKAGE, self.path.name)) from None
        self._inputs, self._outputs = self._wire(pte_file.wiring(self.path, data=data))
        self.input_shapes = [self._inner.input_shapes[i] for i in self._inputs]
        self.output_shapes = [self._inner.output_shapes[i] if i >= 0 else self.input_shapes[~i]
                              for i in self._outputs]
        self.label = f"executorch/{self._inner.label}"       # e.g. executorch/coreml/emulated

    def _wire(self, wiring: pte_file.Wiring) -> tuple[list[int], list[int]]:
        """(Core ML input index per method input, Core ML output index per method output;
        ~k for a method output that is method input k)."""
        names_in = self.metadata.get("inputNames") or self._inner.input_names
        names_out = self.metadata.get("outputNames") or self._inner.output_names
        if len(wiring.delegate_calls) != 1 or sorted(names_in) != sorted(self._inner.input_names) \
                or sorted(names_out) != sorted(self._inner.output_names):
            raise UnsupportedError(f"{self.path.name}: its method does not map onto the embedded "
                                   "Core ML program's inputs and outputs; run it on macOS/iOS")
        args = wiring.delegate_calls[0][1]
        call_in, call_out = args[:len(names_in)], args[len(names_in):]
        try:
            inputs = [self._inner.input_names.index(names_in[call_in.index(v)]) for v in wiring.inputs]
            outputs = [self._inner.output_names.index(names_out[call_out.index(v)])
                       if v in call_out else ~wiring.inputs.index(v) for v in wiring.outputs]
        except ValueError:
            raise UnsupportedError(f"{self.path.name}: its method does not map onto the embedded "
                                   "Core ML program's inputs and outputs; run it on macOS/iOS") from None
        return inputs, outputs

    def _order(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        ordered: list = [None] * len(inputs)
        for method_index, coreml_index in enumerate(self._inputs):
            ordered[coreml_index] = inputs[method_index]
        return ordered

    def _results(self, inputs: list[np.ndarray], results: list[np.ndarray]) -> list[np.ndarray]:
        return [results[i] if i >= 0 else np.array(inputs[~i], np.float32) for i in self._outputs]

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        if len(inputs) != len(self._inputs):
            raise PocketError(f"{self.path.name} takes {len(self._inputs)} input(s), got {len(inputs)}")
        return self._results(inputs, self._inner.run(self._order(inputs)))

    def run_samples(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        if len(inputs) != len(self._inputs):
            raise PocketError(f"{self.path.name} takes {len(self._inputs)} input(s), got {len(inputs)}")
        return self._results(inputs, self._inner.run_samples(self._order(inputs)))

    def raw_call(self, inputs: list[np.ndarray]):
        call = self._inner.raw_call(self._order(inputs))
        return lambda: self._results(inputs, call())

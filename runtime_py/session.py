"""Session: preprocess -> real runtime -> postprocess, driven by the bundle's manifest."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from runtime_py import manifest as mf
from runtime_py.runtimes import RUNTIME_BY_SUFFIX, open_runner
from runtime_py.errors import (ExtraInputsError, IntegrityError, PocketError, UnsupportedError,
                               UsageError, signal_name)
from runtime_py.integrity import sha256_of
from runtime_py.postprocess import get_postprocessor
from runtime_py.preprocess import image_to_tensor, is_ready_tensor, open_image, preprocess



class Session:
    """One artifact, ready to run. Calls are serialised with a lock, so one Session may
    be shared between threads; use several Sessions for parallel inference."""

    def __init__(self, artifact_path: Path, *, bundle: Path | None = None,
                 manifest: dict | None = None, entry: dict | None = None,
                 threads: int | None = None) -> None:
        self.path = artifact_path
        self.bundle = bundle
        self._manifest = manifest
        self._entry = entry
        self._threads = threads
        runtime = entry["runtime"] if entry else RUNTIME_BY_SUFFIX[artifact_path.suffix]
        self._runtime = runtime
        self._runner = open_runner(runtime, artifact_path, threads=threads)
        self._lock = threading.Lock()
        self._labels = _read_labels(bundle, manifest) if manifest else None
        self._post = get_postprocessor(manifest["postprocess"]["kind"])(
            manifest["postprocess"], self._labels) if manifest else None

    @property
    def manifest(self) -> dict | None:
        """The bundle's manifest (None for a bare artifact)."""
        return self._manifest

    @property
    def runtime_label(self) -> str:
        """What runs this artifact here, runtime/delegate: 'executorch/xnnpack',
        'litert/xnnpack', 'coreml' (Core ML itself, on macOS), 'coreml/emulated' (runtime_py's
        Core ML interpreter) or 'executorch/coreml/emulated'. The manifest records it as the
        artifact's verification "runtime"."""
        label = getattr(self._runner, "label", self._runtime)
        delegate = self._entry.get("delegate") if self._entry else None
        if label != self._runtime or not delegate:
            return label
        return f"{label}/{delegate}"

    @property
    def labels(self) -> list[str] | None:
        """The bundle's labels (None for a bare artifact or a model without labels)."""
        return self._labels

    @property
    def info(self) -> dict | None:
        """This artifact's manifest entry (None for a bare artifact)."""
        return self._entry

    @property
    def artifacts(self) -> list[str]:
        return [a["file"] for a in self._manifest["artifacts"]] if self._manifest else [self.path.name]

    def artifact(self, name: str) -> "Session":
        """A Session on another artifact of the same bundle (file name or unique part of it)."""
        if self._manifest is None:
            raise UsageError("a bare artifact has no siblings; load the bundle folder instead")
        entry = mf.find_artifact(self._manifest, name)
        return Session(mf.resolve(self.bundle, entry["file"]), bundle=self.bundle,
                       manifest=self._manifest, entry=entry, threads=self._threads)

    def preprocess(self, x: Any) -> np.ndarray:
        """The model's input tensor for an image or a ready tensor."""
        if self._manifest is None:
            if not hasattr(x, "shape") or getattr(x, "dtype", None) == np.uint8:
                raise UsageError("a bare artifact has no preprocessing rules: pass a float32 "
                                 "tensor, or load the bundle folder to run images")
            return np.ascontiguousarray(np.asarray(x, dtype=np.float32))
        return preprocess(x, self._manifest["input"])

    @property
    def extra_inputs(self) -> list[dict]:
        """The model's inputs after the image (name, shape, dtype): tensors passed as they are."""
        return list(self._manifest.get("extra_inputs", [])) if self._manifest else []

    def run_raw(self, tensor: np.ndarray, *extra: np.ndarray) -> list[np.ndarray]:
        """Run the runtime on ready input tensors (the image tensor, then any extra
        inputs); the raw float32 outputs."""
        with self._lock:
            return self._runner.run([tensor, *extra])

    def run_samples(self, tensors: np.ndarray, *extra: np.ndarray) -> list[np.ndarray]:
        """N ready samples ([N, ...] per input, the model's batch axis holding N): the raw
        outputs, stacked, as N calls of run_raw give them (the runtime may run them together
        where that is bit-identical)."""
        with self._lock:
            return self._runner.run_samples([tensors, *extra])

    def run(self, x: Any, *extra: np.ndarray) -> dict:
        """Preprocess, run, postprocess. `x` is an image (or a ready tensor); a model with
        extra inputs takes them after it, as float32 arrays. Returns the postprocessed answer
        as a dict; dense answers (class maps, depth maps) come at the size of the image."""
        extra = self._extra_tensors(extra)
        if self._manifest is None or is_ready_tensor(x):
            outputs = self.run_raw(self.preprocess(x), *extra)
            return {"outputs": outputs} if self._manifest is None else self._post(outputs)
        image = open_image(x)
        outputs = self.run_raw(image_to_tensor(image, self._manifest["input"]), *extra)
        return self._post(outputs, image.size)

    def _extra_tensors(self, extra: tuple) -> list[np.ndarray]:
        """`extra` checked against the manifest's extra inputs, as float32 arrays."""
        if self._manifest is None:
            return [np.ascontiguousarray(np.asarray(t, dtype=np.float32)) for t in extra]
        want = self.extra_inputs
        if len(extra) != len(want):
            names = ", ".join(f"{e['name']} {e['shape']}" for e in want) or "none"
            raise ExtraInputsError(f"this model takes the image and {len(want)} extra input(s) "
                                   f"({names}); {len(extra)} given")
        tensors = []
        for t, spec in zip(extra, want):
            if not hasattr(t, "shape") or list(np.shape(t)) != list(spec["shape"]):
                raise ExtraInputsError(f"extra input '{spec['name']}' must be a float32 array of shape "
                                 f"{spec['shape']}, got {list(np.shape(t)) if hasattr(t, 'shape') else type(t).__name__}")
            tensors.append(np.ascontiguousarray(np.asarray(t, dtype=np.float32)))
        return tensors


def _read_labels(bundle: Path, manifest: dict) -> list[str] | None:
    name = manifest.get("labels_file")
    if not name:
        return None
    path = mf.resolve(bundle, name)
    if not path.is_file():
        raise IntegrityError(f"the manifest names {name}, which is missing from {bundle}")
    return path.read_text(encoding="utf-8").splitlines()


def check_artifacts(bundle: Path, manifest: dict, entries: list[dict] | None = None) -> None:
    """Raise IntegrityError unless every artifact exists with the recorded sha256."""
    for entry in entries if entries is not None else manifest["artifacts"]:
        path = mf.resolve(bundle, entry["file"])
        if not path.exists():
            raise IntegrityError(f"artifact {entry['file']} is missing from {bundle}")
        if sha256_of(path) != entry["sha256"]:
            raise IntegrityError(f"artifact {entry['file']} does not match the sha256 in the "
                                 "manifest (modified or corrupt); rebuild the bundle")


def _default_entry(manifest: dict) -> dict:
    """The first artifact this machine can run (Core ML-delegated .pte need an Apple OS)."""
    from runtime_py.runtimes import can_run

    for entry in manifest["artifacts"]:
        if can_run(entry):
            return entry
    if not manifest["artifacts"]:
        raise PocketError("this bundle has no artifacts")
    files = ", ".join(a["file"] for a in manifest["artifacts"])
    raise UnsupportedError(f"no artifact of this bundle runs on this machine ({files}); "
                           "Core ML-delegated ExecuTorch programs need macOS or iOS")


def load(path: str | Path, artifact: str | None = None, *, threads: int | None = None,
         check_integrity: bool = True, probe: bool | None = None) -> Session:
    """A Session on a bundle folder (default: its first runnable artifact) or one artifact.

    probe: first load and run the artifact once in a child process, so a corrupt file that
    crashes the native runtime (seen in fuzzing: aborts and segfaults on rare damage that
    passes the runtimes' own checks) raises IntegrityError instead of killing this process.
    Default (None): probe exactly when the bytes were not checked against a manifest's
    sha256 (a bare artifact, or check_integrity=False); once per file per process.
    """
    path = Path(path)
    if not path.exists():
        raise PocketError(f"{path} does not exist")
    if path.suffix in RUNTIME_BY_SUFFIX:
        return _load_single(path, threads, check_integrity, probe)
    if not path.is_dir():
        raise UsageError(f"{path} is neither a bundle folder nor a .pte/.tflite/.mlpackage artifact")
    manifest = mf.read(path)
    if check_integrity:
        check_artifacts(path, manifest)
    entry = mf.find_artifact(manifest, artifact) if artifact else _default_entry(manifest)
    target = mf.resolve(path, entry["file"])
    if probe or (probe is None and not check_integrity):
        probe_artifact(target, entry["runtime"])
    return Session(target, bundle=path, manifest=manifest, entry=entry, threads=threads)


def _load_single(path: Path, threads: int | None, check_integrity: bool,
                 probe: bool | None) -> Session:
    """An artifact file; uses its bundle's manifest when it sits in one that lists it."""
    bundle = path.parent
    if (bundle / mf.MANIFEST_NAME).is_file():
        manifest = mf.read(bundle)
        entries = [a for a in manifest["artifacts"] if a["file"] == path.name]
        if entries:
            if check_integrity:
                check_artifacts(bundle, manifest, entries)
            if probe or (probe is None and not check_integrity):
                probe_artifact(path, entries[0]["runtime"])
            return Session(path, bundle=bundle, manifest=manifest, entry=entries[0], threads=threads)
    if probe or probe is None:
        probe_artifact(path, RUNTIME_BY_SUFFIX[path.suffix])
    return Session(path, threads=threads)


_PROBED: set[tuple] = set()
_PROBE_LOCK = threading.Lock()
_PROBE_CODE = """
import os, sys
os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
from pathlib import Path
import numpy as np
from runtime_py.runtimes import open_runner
runner = open_runner(sys.argv[1], Path(sys.argv[2]))
runner.run([np.zeros(s, np.float32) for s in getattr(runner, "input_shapes", [])])
"""


def probe_artifact(path: Path, runtime: str) -> None:
    """Load + run `path` once in a child process; IntegrityError if the runtime crashed.
    A clean error in the child is left for the in-process load to raise."""
    import os
    import subprocess
    import sys

    from runtime_py.runtimes import needs_probe

    if not needs_probe(runtime):
        return
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _PROBE_LOCK:
        if key in _PROBED:
            return
    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    try:
        proc = subprocess.run([sys.executable, "-c", _PROBE_CODE, runtime, str(path)], env=env,
                              capture_output=True, timeout=600)
    except subprocess.TimeoutExpired:
        raise IntegrityError(f"{path.name} hung the {runtime} runtime in a probe process; the file "
                             "is corrupt: rebuild or re-download it") from None
    if proc.returncode < 0:
        raise IntegrityError(f"{path.name} crashed the {runtime} runtime "
                             f"({signal_name(proc.returncode)}) in a probe process; "
                             "the file is corrupt: rebuild or re-download it")
    with _PROBE_LOCK:
        _PROBED.add(key)

"""Per-operator profile of a .tflite model, measured by LiteRT's own CompiledModel profiler.

ai-edge-litert 2.3.0's Python API has no profiler; its libLiteRt.so exports the C API, which has.
Profiling is enabled per compiled model by the opaque option "runtime_options_string" holding
"enable_profiling = true" (threads: option "xnnpack", "num_threads = N"). The ctypes work runs in
a child (`python -m runtime_py.runtimes.litert.profiler MODEL INPUT.npy ITERS THREADS`, JSON on stdout):
a corrupt model (a truncated .tflite segfaults the loader) or ABI mismatch kills only the child.

Signatures and layouts were checked against the 2.3.0 x86-64 libLiteRt.so by disassembly
(argument registers, null checks, struct copy sizes): LiteRtRankedTensorType is 72 bytes (element
type, rank:7|has_strides:1, int32 dims[8], uint32 strides[8]); ProfiledEventData is 104 bytes
(its tflite MemoryUsage members are 3 x 8 bytes, not the 2 x 8 of the published C header).

Events kept (tflite::Profiler::EventType):
  DELEGATE_PROFILED_OPERATOR_INVOKE_EVENT (8): one per XNNPACK operator the delegate ran, named
    by XNNPACK ("Convolution (NHWC, F32) IGEMM"). XNNPACK times each as the gap between
    consecutive operator end stamps, so they tile the delegate's run without overlap; XNNPACK
    may fuse TFLite ops (e.g. PAD into the next convolution), so counts can differ from the model.
  OPERATOR_INVOKE_EVENT (2): TFLite ops run outside the delegate ("HARD_SWISH"), except a
    delegate kernel node ("DELEGATE", "...Delegate"), which would span its delegated ops again.
  DELEGATE_OPERATOR_INVOKE_EVENT (4): ops inside a delegate that does not profile per operator
    (none with XNNPACK here; its delegate node then emits no event of its own).
Dropped: DEFAULT (1) spans of the whole run ("Invoke", "LiteRT::Run[...]"), runtime
instrumentation (16) and telemetry (32 and up) events, which cover whole invocations.
Times are whole microseconds (XNNPACK truncates each op's time), so a run's op sum is a little
below its latency, which also includes buffer sync and the interpreter's own overhead.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from runtime_py.errors import one_line, signal_name
from runtime_py.op_profile import unavailable

SOURCE = "litert CompiledModel profiler (XNNPACK)"
KEPT_EVENT_TYPES = (2, 4, 8)
TIMEOUT_S = 600
_FLOAT32, _LOCK_READ, _LOCK_WRITE, _HW_CPU = 1, 0, 1, 1
_STATUS = {1: "invalid argument", 3: "runtime failure", 5: "unsupported", 6: "not found",
           500: "file I/O error", 501: "invalid flatbuffer", 504: "compilation error", 1000: "no such index"}
_DTYPES = {2: "int32", 3: "uint8", 4: "int64", 6: "bool", 7: "int16", 9: "int8", 10: "float16"}


class _Failure(Exception):
    """A clean, explained failure inside the child (reported, not raised, to the caller)."""


def profile_litert(path: str | Path, example: np.ndarray, iters: int = 20, threads: int = 1) -> dict:
    """{"available": True, "source": "litert CompiledModel profiler (XNNPACK)", "ops": [(name, ms), ...]} with one (name, ms) per profiled operator invocation,
    or {"available": False, "source": ..., "reason": "<one line: what failed>", "ops": []}."""
    path = Path(path)
    if not path.is_file():
        return _unavailable(f"no such model file: {path}")
    if example.dtype != np.float32:
        return _unavailable(f"the example is {example.dtype}; pass float32 input")
    if iters < 1 or threads < 1:
        return _unavailable(f"iters and threads must be >= 1 (got {iters}, {threads})")
    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    with tempfile.TemporaryDirectory(prefix="litert_prof_") as tmp:
        npy = Path(tmp) / "input.npy"
        np.save(npy, np.ascontiguousarray(example))
        cmd = [sys.executable, "-m", "runtime_py.runtimes.litert.profiler", str(path), str(npy), str(iters),
               str(threads)]
        try:        # stdout: the JSON; stderr: the runtime's native log, kept off the caller's
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, errors="replace",
                                  timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return _unavailable(f"the LiteRT profiler did not finish within {TIMEOUT_S} s")
    if proc.returncode < 0:
        return _unavailable(f"the LiteRT profiler crashed ({signal_name(proc.returncode)})"
                            + _detail(proc.stderr))
    if proc.returncode > 0:       # a Python error in the child: its last stderr line says which
        return _unavailable(f"the LiteRT profiler exited with {proc.returncode}" + _detail(proc.stderr, True))
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        return _unavailable(f"the LiteRT profiler printed no JSON: {proc.stdout[-200:]!r}")
    if "reason" in result:
        return _unavailable(result["reason"] + _detail(proc.stderr))
    return {"available": True, "source": SOURCE, "ops": [(str(n), float(ms)) for n, ms in result["ops"]]}


def _unavailable(reason: str) -> dict:
    return unavailable(SOURCE, one_line(reason, 400))


def _detail(stderr: str, python_error: bool = False) -> str:
    """': <why>' from the child's stderr: the last line after a Python error, else the runtime's
    last "ERROR: ..." log message (it may span lines); '' if there is none."""
    found = (stderr.strip().splitlines() if python_error else
             re.findall(r"^ERROR: (.*?)(?=^[A-Z]+: |^Traceback|\Z)", stderr, re.S | re.M))
    text = found[-1] if found else ""
    return f": {text[:200]}" if text.strip() else ""


# ----------------------------------------------------------------------------- child process
def _bind(lib):
    """Declare the C functions used (signatures verified for ai-edge-litert 2.3.0)."""
    import ctypes as C

    P, PP, SZ, PSZ = C.c_void_p, C.POINTER(C.c_void_p), C.c_size_t, C.POINTER(C.c_size_t)
    sigs = {
        "LiteRtCreateEnvironment": (C.c_int, P, PP),               # (num_options, options, &env)
        "LiteRtCreateModelFromFile": (P, C.c_char_p, PP),          # (env, path, &model)
        "LiteRtGetModelSignature": (P, SZ, PP),                    # (model, index, &signature)
        "LiteRtGetNumSignatureInputs": (P, PSZ), "LiteRtGetNumSignatureOutputs": (P, PSZ),
        "LiteRtGetSignatureInputTensorByIndex": (P, SZ, PP),       # (signature, index, &tensor)
        "LiteRtGetSignatureOutputTensorByIndex": (P, SZ, PP),
        "LiteRtGetRankedTensorType": (P, P),                       # (tensor, LiteRtRankedTensorType*)
        "LiteRtCreateOptions": (PP,), "LiteRtSetOptionsHardwareAccelerators": (P, C.c_int),
        "LiteRtCreateOpaqueOptions": (C.c_char_p, P, P, PP),       # (id, payload, destructor, &opaque)
        "LiteRtAddOpaqueOptions": (P, P), "LiteRtGetTensorBufferPackedSize": (P, PSZ),
        "LiteRtCreateCompiledModel": (P, P, P, PP),                # (env, model, options, &compiled)
        "LiteRtGetCompiledModelInputBufferRequirements": (P, SZ, SZ, PP),   # (cm, sig, i, &req)
        "LiteRtGetCompiledModelOutputBufferRequirements": (P, SZ, SZ, PP),
        "LiteRtCreateManagedTensorBufferFromRequirements": (P, P, P, PP),   # (env, type*, req, &buf)
        "LiteRtLockTensorBuffer": (P, PP, C.c_int),                # (buffer, &host_addr, lock_mode)
        "LiteRtUnlockTensorBuffer": (P,), "LiteRtGetNumProfilerEvents": (P, C.POINTER(C.c_int)),
        "LiteRtRunCompiledModel": (P, SZ, SZ, PP, SZ, PP),         # (cm, sig, n_in, in[], n_out, out[])
        "LiteRtCompiledModelGetProfiler": (P, PP),                 # profiler owned by the model
        "LiteRtResetProfiler": (P,), "LiteRtStartProfiler": (P,), "LiteRtStopProfiler": (P,),
        "LiteRtGetProfilerEvents": (P, C.c_int, P),                # (profiler, capacity, events[])
    }
    for name, args in sigs.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = list(args), C.c_int

    def call(name: str, *args) -> None:
        status = getattr(lib, name)(*args)
        if status:
            raise _Failure(f"{name} failed: status {status} ({_STATUS.get(status, 'see LiteRT log')})")
    return call


def _measure(path: str, x: np.ndarray, iters: int,
             threads: int) -> tuple[list[tuple[str, float]], list[np.ndarray]]:
    """Compile `path` for CPU with profiling on, run it once to warm up, then `iters` times
    under the profiler. Returns the kept (op name, ms) events, and the outputs (so tests can
    check the buffers against the Interpreter). Handles are left to the child's exit."""
    import ctypes as C
    from importlib.util import find_spec

    ranked_tensor_type, event = _c_structs()
    lib = C.CDLL(str(Path(find_spec("ai_edge_litert").origin).parent / "libLiteRt.so"))
    call = _bind(lib)
    env, sig, compiled = _compile(call, path, threads)
    inputs, in_shapes = _buffers(call, env, sig, compiled, ranked_tensor_type, "Input")
    outputs, out_shapes = _buffers(call, env, sig, compiled, ranked_tensor_type, "Output")
    if in_shapes != [x.shape]:
        raise _Failure(f"the model takes inputs {in_shapes}; the example is one {x.shape} tensor")
    _write(call, inputs[0], x)
    kept = _profiled_runs(call, compiled, (compiled, 0, len(inputs), inputs, len(outputs), outputs),
                          iters, event)
    return kept, [_read(call, buf, shape) for buf, shape in zip(outputs, out_shapes)]


def _c_structs() -> tuple[type, type]:
    """The ctypes layouts of LiteRtRankedTensorType (72 bytes) and ProfiledEventData (104 bytes)."""
    import ctypes as C

    class RankedTensorType(C.Structure):
        _fields_ = [("element_type", C.c_int32), ("rank_bits", C.c_uint32),
                    ("dims", C.c_int32 * 8), ("strides", C.c_uint32 * 8)]

    class Event(C.Structure):        # ProfiledEventData
        _fields_ = [("tag", C.c_char_p), ("event_type", C.c_int), ("start_us", C.c_uint64),
                    ("elapsed_us", C.c_uint64), ("mem", C.c_int64 * 6), ("metadata", C.c_uint64 * 2),
                    ("source", C.c_int)]

    assert C.sizeof(RankedTensorType) == 72 and C.sizeof(Event) == 104
    return RankedTensorType, Event


def _compile(call, path: str, threads: int) -> tuple:
    """(environment, signature 0, compiled model) of `path` for the CPU, profiling enabled and
    XNNPACK on `threads` threads."""
    import ctypes as C

    P, libc = C.c_void_p, C.CDLL(None)
    libc.strdup.restype, libc.strdup.argtypes = P, [C.c_char_p]
    env, model, sig, options, compiled = P(), P(), P(), P(), P()
    call("LiteRtCreateEnvironment", 0, None, C.byref(env))
    call("LiteRtCreateModelFromFile", env, path.encode(), C.byref(model))
    call("LiteRtGetModelSignature", model, 0, C.byref(sig))
    call("LiteRtCreateOptions", C.byref(options))
    call("LiteRtSetOptionsHardwareAccelerators", options, _HW_CPU)
    for ident, toml in ((b"runtime_options_string", "enable_profiling = true\n"),
                        (b"xnnpack", f"num_threads = {threads}\n")):
        opaque = P()        # the payload is malloc'ed (strdup) and released by free
        call("LiteRtCreateOpaqueOptions", ident, libc.strdup(toml.encode()), C.cast(libc.free, P),
             C.byref(opaque))
        call("LiteRtAddOpaqueOptions", options, opaque)
    call("LiteRtCreateCompiledModel", env, model, options, C.byref(compiled))
    return env, sig, compiled


def _buffers(call, env, sig, compiled, ranked_tensor_type: type, kind: str) -> tuple:
    """(array of buffer handles, their shapes) for the signature's "Input"s or "Output"s:
    managed float32 buffers the compiled model accepts, sized to their shapes."""
    import ctypes as C

    P = C.c_void_p
    count, handles, shapes = C.c_size_t(), [], []
    call(f"LiteRtGetNumSignature{kind}s", sig, C.byref(count))
    for i in range(count.value):
        tensor, ttype, req, buf, size = P(), ranked_tensor_type(), P(), P(), C.c_size_t()
        call(f"LiteRtGetSignature{kind}TensorByIndex", sig, i, C.byref(tensor))
        call("LiteRtGetRankedTensorType", tensor, C.byref(ttype))
        if ttype.element_type != _FLOAT32:
            dtype = _DTYPES.get(ttype.element_type, f"element type {ttype.element_type}")
            raise _Failure(f"{kind.lower()} {i} is {dtype}; only float32 inputs/outputs are supported")
        shape = tuple(ttype.dims[: ttype.rank_bits & 0x7F])
        call(f"LiteRtGetCompiledModel{kind}BufferRequirements", compiled, 0, i, C.byref(req))
        call("LiteRtCreateManagedTensorBufferFromRequirements", env, C.byref(ttype), req, C.byref(buf))
        call("LiteRtGetTensorBufferPackedSize", buf, C.byref(size))
        if size.value != 4 * int(np.prod(shape)):       # guards the memmoves of _write and _read
            raise _Failure(f"{kind.lower()} {i} buffer holds {size.value} bytes for shape {shape}")
        handles.append(buf.value)
        shapes.append(shape)
    return (P * len(handles))(*handles), shapes


def _write(call, buf, x: np.ndarray) -> None:
    """Copy `x` into the tensor buffer `buf` (its size checked by _buffers)."""
    import ctypes as C

    addr = C.c_void_p()
    call("LiteRtLockTensorBuffer", buf, C.byref(addr), _LOCK_WRITE)
    C.memmove(addr, np.ascontiguousarray(x).ctypes.data, x.nbytes)
    call("LiteRtUnlockTensorBuffer", buf)


def _read(call, buf, shape: tuple[int, ...]) -> np.ndarray:
    """A float32 copy of the tensor buffer `buf`."""
    import ctypes as C

    addr, y = C.c_void_p(), np.empty(shape, np.float32)
    call("LiteRtLockTensorBuffer", buf, C.byref(addr), _LOCK_READ)
    C.memmove(y.ctypes.data, addr, y.nbytes)
    call("LiteRtUnlockTensorBuffer", buf)
    return y


def _profiled_runs(call, compiled, run: tuple, iters: int, event: type) -> list[tuple[str, float]]:
    """Run once to warm up, then `iters` times under the compiled model's profiler; the kept
    (op name, ms) events, in order."""
    import ctypes as C

    profiler = C.c_void_p()
    call("LiteRtRunCompiledModel", *run)                       # warm-up, not profiled
    call("LiteRtCompiledModelGetProfiler", compiled, C.byref(profiler))
    if not profiler:
        raise _Failure("the compiled model has no profiler (enable_profiling was ignored)")
    call("LiteRtResetProfiler", profiler)
    call("LiteRtStartProfiler", profiler)
    for _ in range(iters):
        call("LiteRtRunCompiledModel", *run)
    call("LiteRtStopProfiler", profiler)
    count = C.c_int()
    call("LiteRtGetNumProfilerEvents", profiler, C.byref(count))
    events = (event * count.value)()
    if count.value:
        call("LiteRtGetProfilerEvents", profiler, count.value, events)
    kept = [(e.tag.decode(errors="replace"), e.elapsed_us / 1000.0) for e in events
            if e.tag and e.event_type in KEPT_EVENT_TYPES and not _is_delegate_node(e.event_type, e.tag)]
    if not kept:
        raise _Failure("the LiteRT profiler recorded no operator events")
    return kept


def _is_delegate_node(event_type: int, tag: bytes) -> bool:
    """A TFLite op event of a whole delegate kernel (it would double count its inner ops)."""
    return event_type == 2 and (tag == b"DELEGATE" or tag.endswith(b"Delegate"))


def main(argv: list[str]) -> int:
    """Child entry point: MODEL INPUT.npy ITERS THREADS -> one JSON line on the real stdout."""
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)                    # anything native printed to stdout goes to stderr instead
    model, npy, iters, threads = argv
    try:
        ops, _ = _measure(model, np.load(npy), int(iters), int(threads))
        result: dict = {"ops": ops}
    except _Failure as exc:
        result = {"reason": str(exc)}
    print(json.dumps(result), file=out, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

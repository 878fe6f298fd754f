"""Read an ExecuTorch .pte without loading it or importing torch: its methods, delegates,
non-delegated operators, and the bytes each delegate was handed at export.

A minimal reader for the Program fields these need (schema: executorch
schema/program.fbs; field numbers are facts of that format). The generated Python
bindings shipped in executorch 1.4.1 are broken (ExecutionPlan() resolves to a module)
and exir's deserializer imports torch.

Layout: a flatbuffer (root offset, file identifier "ET12") whose bytes 8.. may hold an
extended header "eh00" {u32 length, u64 program_size, u64 segment_base_offset, ...};
data segments then follow the flatbuffer at segment_base_offset.
"""
from __future__ import annotations

import struct
from pathlib import Path
from typing import Any, NamedTuple

from runtime_py.errors import PocketError, one_line

IDENTIFIER = b"ET"
_EXTENDED_HEADER = b"eh00"
_INLINE, _SEGMENT = 0, 1              # DataLocation
_DELEGATE_CALL = 2                    # InstructionArguments union type of DelegateCall


class Delegate(NamedTuple):
    id: str                           # ExecuTorch's delegate id: "XnnpackBackend", "CoreMLBackend"
    data: bytes                       # what the delegate's preprocess() produced


def read(path: Path) -> bytes:
    """The file's bytes; a one-line PocketError for a file that is not a .pte."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise PocketError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) < 8 or data[4:6] != IDENTIFIER:
        raise PocketError(f"{Path(path).name} is not an ExecuTorch .pte file (bad header); "
                          "re-export it or check the download")
    return data


def describe(path: Path, data: bytes | None = None) -> dict:
    """{"methods": [...], "delegates": ["XnnpackBackend", ...], "delegate_count": n,
    "operators": [non-delegated kernels, e.g. "aten::add.out"]}. Every reader here takes
    the file's bytes when the caller already has them (`read(path)`), else reads them."""
    data = read(path) if data is None else data
    try:
        program = _table(data, _root(data))
        methods, delegates, operators = [], [], set()
        for plan in _vector(program, 1):                         # Program.execution_plan
            methods.append(_string(plan, 0))                     # ExecutionPlan.name
            delegates.extend(_string(d, 0) for d in _vector(plan, 7))    # .delegates[].id
            for op in _vector(plan, 6):                          # .operators[]
                name, overload = _string(op, 0), _string(op, 1)
                operators.add(f"{name}.{overload}" if overload else name)
    except Exception as exc:  # noqa: BLE001 - a malformed flatbuffer, worded once here
        raise _unreadable(path, exc) from None
    return {"methods": methods, "delegates": sorted(set(delegates)),
            "delegate_count": len(delegates), "operators": sorted(operators)}


def delegates(path: Path, method: str = "forward", data: bytes | None = None) -> list[Delegate]:
    """The delegates of `method`, in the plan's order, with their processed bytes."""
    data = read(path) if data is None else data
    try:
        program = _table(data, _root(data))
        plan = _plan(program, path, method)
        inline = _vector(program, 3)                             # Program.backend_delegate_data
        segments = _vector(program, 4)                           # Program.segments
        base = _segment_base(data)
        found = []
        for d in _vector(plan, 7):
            ref = _child(d, 1)                                   # BackendDelegate.processed
            location, index = _scalar(ref, 0, "b"), _scalar(ref, 1, "I")
            if location == _INLINE:
                blob = _bytes(inline[index], 0)                  # BackendDelegateInlineData.data
            elif location == _SEGMENT:
                seg = segments[index]
                start = base + _scalar(seg, 0, "Q")              # DataSegment.offset
                blob = data[start:start + _scalar(seg, 1, "Q")]  # DataSegment.size
            else:
                raise ValueError(f"unknown delegate data location {location}")
            found.append(Delegate(_string(d, 0), bytes(blob)))
    except PocketError:
        raise
    except Exception as exc:  # noqa: BLE001 - a malformed flatbuffer, worded once here
        raise _unreadable(path, exc) from None
    return found


class Wiring(NamedTuple):
    """How a method's values flow: its inputs and outputs (value indices) and, per
    DelegateCall instruction, (delegate index, argument value indices: inputs then outputs)."""

    inputs: list[int]
    outputs: list[int]
    delegate_calls: list[tuple[int, list[int]]]


def wiring(path: Path, method: str = "forward", data: bytes | None = None) -> Wiring:
    data = read(path) if data is None else data
    try:
        plan = _plan(_table(data, _root(data)), path, method)
        calls = []
        for chain in _vector(plan, 5):                           # ExecutionPlan.chains
            for instruction in _vector(chain, 2):                # Chain.instructions
                if _scalar(instruction, 0, "B") != _DELEGATE_CALL:
                    continue
                call = _child(instruction, 1)
                calls.append((_scalar(call, 0, "i"), _ints(call, 1)))
        return Wiring(_ints(plan, 3), _ints(plan, 4), calls)
    except PocketError:
        raise
    except Exception as exc:  # noqa: BLE001 - a malformed flatbuffer, worded once here
        raise _unreadable(path, exc) from None


def _plan(program: Any, path: Path, method: str) -> Any:
    for plan in _vector(program, 1):                             # Program.execution_plan
        if _string(plan, 0) == method:                           # ExecutionPlan.name
            return plan
    raise PocketError(f"{Path(path).name} has no method '{method}'")


def _ints(tab: Any, index: int) -> list[int]:
    off = _field(tab, index)
    if not off:
        return []
    start, n = tab.Vector(off), tab.VectorLen(off)
    return list(struct.unpack_from(f"<{n}i", tab.Bytes, start))


def _unreadable(path: Path, exc: BaseException) -> PocketError:
    return PocketError(f"{Path(path).name} is not a readable ExecuTorch program "
                       f"({one_line(exc)}); re-export it")


def _segment_base(data: bytes) -> int:
    if data[8:12] != _EXTENDED_HEADER:
        raise ValueError("the program has data segments but no extended header")
    return struct.unpack_from("<Q", data, 24)[0]


def _root(data: bytes) -> int:
    return struct.unpack_from("<I", data, 0)[0]


def _table(data: bytes, pos: int) -> Any:
    from flatbuffers.table import Table

    return Table(data, pos)


def _field(tab: Any, index: int) -> int:
    return tab.Offset(4 + 2 * index)


def _string(tab: Any, index: int) -> str:
    off = _field(tab, index)
    return tab.String(off + tab.Pos).decode() if off else ""


def _scalar(tab: Any, index: int, fmt: str, default: int = 0) -> int:
    off = _field(tab, index)
    return struct.unpack_from("<" + fmt, tab.Bytes, tab.Pos + off)[0] if off else default


def _child(tab: Any, index: int) -> Any:
    from flatbuffers.table import Table

    off = _field(tab, index)
    if not off:
        raise ValueError(f"missing table field {index}")
    return Table(tab.Bytes, tab.Indirect(tab.Pos + off))


def _bytes(tab: Any, index: int) -> memoryview:
    off = _field(tab, index)
    if not off:
        return memoryview(b"")
    start = tab.Vector(off)
    return memoryview(tab.Bytes)[start:start + tab.VectorLen(off)]


def _vector(tab: Any, index: int) -> list:
    from flatbuffers.table import Table

    off = _field(tab, index)
    if not off:
        return []
    start, n = tab.Vector(off), tab.VectorLen(off)
    return [Table(tab.Bytes, tab.Indirect(start + 4 * i)) for i in range(n)]

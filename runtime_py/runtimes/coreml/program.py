"""Read a Core ML ML program (.mlpackage) without coremltools: ops, bindings, constants.

`read_package(path)` returns a `Program`: the model's declared inputs/outputs, and the
main function's block (for its opset, e.g. "CoreML7" for iOS 17, "CoreML8" for iOS 18)
as a list of `Op`s. An op argument is a `Var` (a variable's name) or a constant: a numpy
array or numpy scalar (rank 0) of float16/float32/int8/uint8/int16/uint16/int32/bool/...,
a `str` (rank 0 string) or a list of str. Sub-byte tensors (int4, uint1..uint6) come
unpacked as int8/uint8 of their declared shape; bfloat16 widens to float32 and float8 to
float16, exactly. Blob constants are read-only views of the memory-mapped weight file.

The package layout is found through `Manifest.json` (`rootModelIdentifier` ->
`itemInfoEntries[id].path` under `Data/`); `@model_path` in a blob's file name is the
folder of the model spec. Anything unreadable raises one-line `PocketError`s
"<path> is not a readable Core ML package: <why>".
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from google.protobuf.message import DecodeError

from runtime_py.runtimes.coreml.blobs import BlobError, BlobFile, decode, numpy_dtype
from runtime_py.runtimes.coreml.proto import ARRAY_DATA_TYPES, DATA_TYPES, parse_model
from runtime_py.errors import PocketError, one_line

MANIFEST_LIMIT = 1 << 20            # bytes; a package manifest is a few hundred
SPEC_LIMIT = (1 << 31) - 1          # protobuf's own message size limit
MODEL_PATH = "@model_path/"


@dataclass(frozen=True)
class Var:
    """A reference to a variable (a function input or an op output) by name."""

    name: str


class TensorSpec(NamedTuple):
    """A declared value: name, dtype name ("float16", "int4", "str", "list", ...) and
    shape (None for an unknown dimension)."""

    name: str
    dtype: str
    shape: tuple[int | None, ...]


Arg = Var | np.ndarray | np.generic | str | list | dict


@dataclass
class Block:
    """A nested block (of `cond`, `while_loop`, ...): its inputs, output names and ops."""

    inputs: list[TensorSpec]
    outputs: list[str]
    ops: list[Op]


@dataclass
class Op:
    """One MIL operation. `inputs`: parameter -> bound arguments (a list: variadic
    parameters such as concat's `values` bind several); `attributes` exclude "name"."""

    type: str
    name: str
    inputs: dict[str, list[Arg]]
    outputs: list[TensorSpec]
    attributes: dict[str, Any] = field(default_factory=dict)
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Program:
    """A package's model description and its chosen function's block."""

    path: Path
    specification_version: int
    inputs: list[TensorSpec]           # the model description's features
    outputs: list[TensorSpec]
    function: str
    opset: str                         # the block specialization key, e.g. "CoreML7"
    function_inputs: list[TensorSpec]
    block_outputs: list[str]
    ops: list[Op]


class _Unreadable(Exception):
    """Why a package cannot be read; read_package words it as a PocketError."""


def _read_bounded(path: Path, limit: int, what: str) -> bytes:
    """The bytes of file `path`, refusing a missing file or one over `limit` bytes."""
    if not path.is_file():
        raise _Unreadable(f"no {what}")
    size = path.stat().st_size
    if size > limit:
        raise _Unreadable(f"{what} is {size} bytes (limit {limit})")
    return path.read_bytes()


def _inside(root: Path, relative: str, what: str) -> Path:
    """`root / relative`, refusing a path that leaves `root`."""
    target = (root / relative).resolve()
    if not target.is_relative_to(root.resolve()):
        raise _Unreadable(f"{what} path {relative!r} leaves the package")
    return target


def locate_spec(package: Path) -> Path:
    """The model spec file a package's Manifest.json names as its root model."""
    if not package.is_dir():
        raise _Unreadable("not a folder")
    text = _read_bounded(package / "Manifest.json", MANIFEST_LIMIT, "Manifest.json")
    try:
        manifest = json.loads(text)
        root = manifest["rootModelIdentifier"]
        relative = manifest["itemInfoEntries"][root]["path"]
    except (ValueError, KeyError, TypeError) as exc:
        raise _Unreadable(f"Manifest.json names no root model ({one_line(exc)})") from None
    if not isinstance(relative, str) or not relative:
        raise _Unreadable("Manifest.json gives no path for the root model")
    spec = _inside(package / "Data", relative, "root model")
    if not spec.is_file():
        raise _Unreadable(f"no model spec at Data/{relative}")
    return spec


class _Reader:
    """Turns MIL protobuf messages into Ops, opening weight files as blobs name them."""

    def __init__(self, spec_dir: Path) -> None:
        self.spec_dir = spec_dir
        self.blob_files: dict[str, BlobFile] = {}

    def blob_file(self, name: str) -> BlobFile:
        """The weight file a blobFileValue's `fileName` names (opened once)."""
        if name not in self.blob_files:
            if not name.startswith(MODEL_PATH):
                raise _Unreadable(f"blob file {name!r} is not under {MODEL_PATH}")
            path = _inside(self.spec_dir, name[len(MODEL_PATH):], "blob file")
            self.blob_files[name] = BlobFile(path)
        return self.blob_files[name]

    def value(self, value: Any) -> Any:
        """A MIL Value as numpy / str / list / dict."""
        kind = value.type.WhichOneof("type")
        which = value.WhichOneof("value")
        if kind == "tensorType":
            dtype, shape = _tensor_type(value.type.tensorType)
            if None in shape:
                raise _Unreadable(f"a constant of unknown shape {shape}")
            if which == "blobFileValue":
                blob = value.blobFileValue
                array = self.blob_file(blob.fileName).read(blob.offset, dtype, shape)
                return array if shape else array[()]
            if which == "immediateValue" and value.immediateValue.HasField("tensor"):
                return _tensor_value(value.immediateValue.tensor, dtype, shape)
        elif which == "immediateValue":
            return self.container(value.immediateValue)
        raise _Unreadable(f"a {kind or 'untyped'} value holding {which or 'nothing'}")

    def container(self, immediate: Any) -> Any:
        """An immediate list, tuple or dictionary value."""
        which = immediate.WhichOneof("value")
        if which in ("list", "tuple"):
            return [self.value(v) for v in getattr(immediate, which).values]
        if which == "dictionary":
            return {_hashable(self.value(pair.key)): self.value(pair.value)
                    for pair in immediate.dictionary.values}
        raise _Unreadable(f"an immediate {which or 'empty'} value without a tensor type")

    def op(self, message: Any) -> Op:
        """One Operation message as an Op; errors name the op."""
        try:
            return self._op(message)
        except (_Unreadable, BlobError) as exc:
            first = message.outputs[0].name if message.outputs else "?"
            raise _Unreadable(f"op {message.type} -> {first}: {exc}") from None

    def _op(self, message: Any) -> Op:
        """One Operation message as an Op."""
        inputs = {entry.key: [Var(b.name) if b.WhichOneof("binding") == "name"
                              else self.value(b.value) for b in entry.value.arguments]
                  for entry in message.inputs}
        attributes = {entry.key: _name(entry.value) if entry.key == "name"
                      else self.value(entry.value) for entry in message.attributes}
        outputs = [_named_type(o) for o in message.outputs]
        name = attributes.pop("name", None)
        if not isinstance(name, str):
            name = outputs[0].name if outputs else ""
        return Op(message.type, name, inputs, outputs, attributes,
                  [self.block(b) for b in message.blocks])

    def block(self, message: Any) -> Block:
        """A Block message (ops in program order)."""
        return Block([_named_type(i) for i in message.inputs], list(message.outputs),
                     [self.op(o) for o in message.operations])


def _tensor_type(tensor: Any) -> tuple[str, tuple[int | None, ...]]:
    """(dtype name, shape) of a TensorType; None for unknown dimensions."""
    dtype = DATA_TYPES.get(tensor.dataType, f"dtype{tensor.dataType}")
    shape = tuple([d.constant.size for d in tensor.dimensions])
    if 0 in shape:          # an unknown dimension reads as size 0: look closer
        shape = tuple(d.constant.size if d.WhichOneof("dimension") == "constant" else None
                      for d in tensor.dimensions)
    if tensor.rank != len(shape) and tensor.rank != -1:
        raise _Unreadable(f"a tensor type of rank {tensor.rank} with {len(shape)} dimensions")
    return dtype, shape


def _name(value: Any) -> str | None:
    """An op's "name" attribute (a string scalar), read directly; None if it is not one."""
    strings = value.immediateValue.tensor.strings.values
    return strings[0] if len(strings) == 1 and value.type.tensorType.dataType == 2 else None


def _named_type(named: Any) -> TensorSpec:
    """A NamedValueType (function input, op output) as a TensorSpec."""
    kind = named.type.WhichOneof("type")
    if kind == "tensorType":
        return TensorSpec(named.name, *_tensor_type(named.type.tensorType))
    if kind == "stateType" and named.type.stateType.wrappedType.HasField("tensorType"):
        _, shape = _tensor_type(named.type.stateType.wrappedType.tensorType)
        return TensorSpec(named.name, "state", shape)
    return TensorSpec(named.name, {"listType": "list", "tupleType": "tuple",
                                   "dictionaryType": "dict"}.get(kind, "unknown"), ())


def _tensor_value(tensor: Any, dtype: str, shape: tuple[int, ...]) -> Any:
    """An immediate TensorValue of declared `dtype` and `shape`."""
    which = tensor.WhichOneof("value")
    count = math.prod(shape)
    if which == "strings":
        strings = list(tensor.strings.values)
        if len(strings) != count:
            raise _Unreadable(f"{len(strings)} strings for a tensor of shape {shape}")
        return strings[0] if not shape else np.array(strings, object).reshape(shape).tolist()
    if which == "bytes":
        array = decode(tensor.bytes.values, dtype, count)
    elif which is None:
        raise _Unreadable(f"an empty immediate {dtype} tensor")
    else:
        values = getattr(tensor, which).values
        if len(values) != count:
            raise _Unreadable(f"{len(values)} values for a tensor of shape {shape}")
        array = np.array(values, numpy_dtype(dtype))
    return array.reshape(shape) if shape else array.reshape(())[()]


def _hashable(key: Any) -> Any:
    """A dictionary key as something hashable (arrays become tuples)."""
    return tuple(key.tolist()) if isinstance(key, np.ndarray) else key


def _feature(feature: Any) -> TensorSpec:
    """A model description feature (multi-array, image, scalar) as a TensorSpec."""
    kind = feature.type.WhichOneof("Type")
    if kind in ("multiArrayType", "stateType"):
        array = (feature.type.multiArrayType if kind == "multiArrayType"
                 else feature.type.stateType.arrayType)
        shape = tuple(array.shape)
        if not shape and array.enumeratedShapes.shapes:
            shape = tuple(array.enumeratedShapes.shapes[0].shape)
        if not shape and array.shapeRange.sizeRanges:
            shape = tuple(r.lowerBound for r in array.shapeRange.sizeRanges)
        dtype = ARRAY_DATA_TYPES.get(array.dataType, f"array{array.dataType}")
        return TensorSpec(feature.name, dtype if kind == "multiArrayType" else "state", shape)
    if kind == "imageType":
        image = feature.type.imageType
        return TensorSpec(feature.name, "image", (image.height, image.width))
    scalars = {"int64Type": "int64", "doubleType": "float64", "stringType": "str"}
    return TensorSpec(feature.name, scalars.get(kind, kind or "unknown"), ())


def _description(model: Any, function: str) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """The declared inputs and outputs (of `function` in a multi-function model)."""
    described = model.description
    for entry in described.functions:
        if entry.name == function:
            described = entry
    return [_feature(f) for f in described.input], [_feature(f) for f in described.output]


def _pick(entries: Any, wanted: str, what: str, fallback: bool) -> tuple[str, Any]:
    """The (key, value) of `wanted` among map entries, or (`fallback`) the only one."""
    found = {entry.key: entry.value for entry in entries}
    if wanted in found:
        return wanted, found[wanted]
    if fallback and len(found) == 1:
        return next(iter(found.items()))
    raise _Unreadable(f"no {what} {wanted!r} (has {sorted(found) or 'none'})")


def _program(package: Path, function: str | None) -> Program:
    """read_package's work; raises _Unreadable, BlobError or a decoding error."""
    spec_path = locate_spec(package)
    model = parse_model(_read_bounded(spec_path, SPEC_LIMIT, "model spec"))
    if not model.HasField("mlProgram"):
        raise _Unreadable("the model spec holds no ML program (an older neural network?)")
    wanted = function or model.description.defaultFunctionName or "main"
    name, main = _pick(model.mlProgram.functions, wanted, "function", function is None)
    opset, block = _pick(main.block_specializations, main.opset, "block for opset", True)
    reader = _Reader(spec_path.parent)
    inputs, outputs = _description(model, name)
    return Program(package, model.specificationVersion, inputs, outputs, name, opset,
                   [_named_type(i) for i in main.inputs], list(block.outputs),
                   [reader.op(op) for op in block.operations])


def read_package(path: str | Path, function: str | None = None) -> Program:
    """The ML program in the .mlpackage folder `path` (its default or "main" function,
    or `function`). Raises a one-line PocketError for anything unreadable."""
    package = Path(path)
    try:
        return _program(package, function)
    except (_Unreadable, BlobError) as exc:
        reason = str(exc)
    except DecodeError as exc:
        reason = f"its model spec is not a Core ML protobuf ({one_line(exc)})"
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, RecursionError,
            OSError) as exc:
        reason = f"{type(exc).__name__}: {one_line(exc)}"
    raise PocketError(f"{package} is not a readable Core ML package: {one_line(reason, 300)}")

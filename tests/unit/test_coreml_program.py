"""runtime_py.runtimes.coreml.program reads Core ML ML programs exactly as coremltools does.

Small torch models are converted (iOS 17 and iOS 18, fp16/fp32) and compressed the ways the
builder compresses (int8/uint8 linear, 2/3/4/6-bit palettes, pruning); a hand-made program
adds an immediate of every MIL dtype, a blob of every blob dtype (written by coremltools'
own blob writer), a nested block and a list value. Each op, binding and constant is
compared with coremltools' reading of the same package (its protobuf classes plus its
milproto value loader, which reads blobs with libmilstoragepython). Constants must be
bit-equal, with the same numpy dtype and shape.
"""
from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from runtime_py.runtimes.coreml.blobs import BLOB_DTYPES, decode, unpack_bits
from runtime_py.runtimes.coreml.program import Op, Var, read_package
from runtime_py.errors import PocketError


WEIGHTS = Path("Data/com.apple.CoreML/weights/weight.bin")
SPEC = Path("Data/com.apple.CoreML/model.mlmodel")
ARRAY_TYPES = {"FLOAT32": "float32", "FLOAT16": "float16", "DOUBLE": "float64",
               "INT32": "int32", "INT8": "int8"}
# package -> (base package, compression, options, blob dtypes that must appear in it)
COMPRESSED = {
    "ios17_w8": ("ios17_fp16", "linear", {"mode": "linear_symmetric", "dtype": "int8",
                                          "granularity": "per_channel"}, {"INT8", "FLOAT16"}),
    "ios17_u8": ("ios17_fp16", "linear", {"mode": "linear", "dtype": "uint8"}, {"UINT8"}),
    "ios17_p4": ("ios17_fp16", "palettize", {"nbits": 4, "mode": "kmeans"}, {"UINT8"}),
    "ios17_prune": ("ios17_fp16", "prune", {"target_sparsity": 0.5}, {"UINT8", "FLOAT16"}),
    "ios18_p6": ("ios18_fp16", "palettize", {"nbits": 6, "mode": "kmeans"}, {"UINT6"}),
    "ios18_p4": ("ios18_fp32", "palettize", {"nbits": 4, "mode": "kmeans"},
                 {"UINT4", "FLOAT32"}),
    "ios18_p3": ("ios18_fp16", "palettize", {"nbits": 3, "mode": "kmeans",
                                             "granularity": "per_grouped_channel",
                                             "group_size": 4}, {"UINT3"}),
    "ios18_p2": ("ios18_fp16", "palettize", {"nbits": 2, "mode": "uniform"}, {"UINT2"}),
    "ios18_w4": ("ios18_fp16", "linear", {"mode": "linear_symmetric", "dtype": "int4",
                                          "granularity": "per_block", "block_size": 8},
                 {"INT4"}),
    "ios18_prune": ("ios18_fp16", "prune", {"target_sparsity": 0.5}, {"UINT1"}),
}
CONVERTED = {"ios17_fp16": ("iOS17", "FLOAT16", {"FLOAT16"}),
             "ios17_fp32": ("iOS17", "FLOAT32", {"FLOAT32"}),
             "ios18_fp16": ("iOS18", "FLOAT16", {"FLOAT16"}),
             "ios18_fp32": ("iOS18", "FLOAT32", {"FLOAT32"})}
BLOB_WRITES = {"FLOAT16": "fp16", "FLOAT32": "float", "UINT8": "uint8", "INT8": "int8",
               "INT16": "int16", "UINT16": "uint16", "INT32": "int32", "UINT32": "uint32",
               "INT4": "int4", "UINT1": "uint1", "UINT2": "uint2", "UINT3": "uint3",
               "UINT4": "uint4", "UINT6": "uint6"}


def _net():
    """conv+BN, hardswish, conv, max-pool, upsample, concat (a variadic input), mean,
    linear: the lowerings the interpreter will meet, with weights worth compressing."""
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.bn = nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16)
            self.conv2 = nn.Conv2d(16, 16, 3, padding=1)
            self.fc = nn.Linear(32, 10)

        def forward(self, x):
            y = nn.functional.hardswish(self.bn(self.conv1(x)))
            z = nn.functional.max_pool2d(torch.relu(self.conv2(y)), 2, 2)
            z = nn.functional.interpolate(z, scale_factor=2.0, mode="bilinear")
            return self.fc(torch.cat([y, z], 1).mean((2, 3)))

    torch.manual_seed(0)
    net = Net().eval()
    with torch.no_grad():
        net.bn.running_mean.uniform_(-0.5, 0.5)
        net.bn.running_var.uniform_(0.5, 2.0)
    return net


def _compress(model, how: str, options: dict):
    from coremltools.optimize import coreml as opt

    config = {"linear": opt.OpLinearQuantizerConfig, "palettize": opt.OpPalettizerConfig,
              "prune": opt.OpMagnitudePrunerConfig}[how](weight_threshold=16, **options)
    run = {"linear": opt.linear_quantize_weights, "palettize": opt.palettize_weights,
           "prune": opt.prune_weights}[how]
    return run(model, opt.OptimizationConfig(global_config=config))


@pytest.fixture(scope="module")
def packages(tmp_path_factory) -> dict[str, Path]:
    """Every package of CONVERTED and COMPRESSED, built once."""
    import coremltools as ct
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("coreml_program")
    net, x = _net(), torch.rand(1, 3, 8, 8)
    ep = torch.export.export(net, (x,)).run_decompositions({})
    models, paths = {}, {}
    for name, (target, precision, _) in CONVERTED.items():
        models[name] = ct.convert(ep, convert_to="mlprogram",
                                  minimum_deployment_target=getattr(ct.target, target),
                                  compute_precision=getattr(ct.precision, precision),
                                  skip_model_load=True)
    for name, (base, how, options, _) in COMPRESSED.items():
        models[name] = _compress(models[base], how, options)
    for name, model in models.items():
        paths[name] = root / f"{name}.mlpackage"
        model.save(str(paths[name]))
    return paths


# ---- coremltools' view ---------------------------------------------------------------------

def _mil_dtype(code: int) -> str:
    """coremltools' name of a MIL.proto DataType code, spelled as the reader spells it."""
    from coremltools.proto import MIL_pb2

    return MIL_pb2.DataType.Name(code).lower().replace("string", "str")


def _spec_type(value_type) -> tuple[str, tuple]:
    if value_type.WhichOneof("type") == "listType":
        return "list", ()
    tensor = value_type.tensorType
    shape = tuple(d.constant.size if d.HasField("constant") else None for d in tensor.dimensions)
    return _mil_dtype(tensor.dataType), shape


def _assert_same(mine, theirs, where: str) -> None:
    """Bit-equal constants: same kind (scalar/array/str/list), numpy dtype and shape."""
    if isinstance(theirs, str):
        assert mine == theirs, where
    elif isinstance(theirs, np.ndarray) and theirs.dtype.kind == "U":
        assert mine == theirs.tolist(), where
    elif isinstance(theirs, (list, tuple)):
        assert isinstance(mine, list) and len(mine) == len(theirs), where
        for index, (a, b) in enumerate(zip(mine, theirs)):
            _assert_same(a, b, f"{where}[{index}]")
    else:
        assert isinstance(mine, np.generic) == isinstance(theirs, np.generic), where
        a, b = np.asarray(mine), np.asarray(theirs)
        assert (a.dtype, a.shape) == (b.dtype, b.shape), where
        assert a.tobytes() == b.tobytes(), where


class _Their:
    """coremltools' reading of one package's constants (milproto loader + blob reader)."""

    def __init__(self, package: Path) -> None:
        from coremltools.converters.mil.frontend.milproto import load

        self.load = load
        self.context = load.TranscriptionContext(str(package / WEIGHTS.parent))
        self.blob_dtypes: set[str] = set()

    def value(self, value):
        if value.WhichOneof("value") == "blobFileValue":
            self.blob_dtypes.add(_mil_dtype(value.type.tensorType.dataType).upper())
        if value.type.WhichOneof("type") == "listType":
            return [self.value(v) for v in value.immediateValue.list.values]
        return self.load._load_value(self.context, value)


def _compare_op(mine: Op, theirs, their: _Their) -> None:
    where = f"{theirs.type} -> {theirs.outputs[0].name if theirs.outputs else '?'}"
    assert mine.type == theirs.type, where
    expected_name = (their.value(theirs.attributes["name"]) if "name" in theirs.attributes
                     else theirs.outputs[0].name)
    assert mine.name == expected_name, where
    assert sorted(mine.inputs) == sorted(theirs.inputs), where
    for key, argument in theirs.inputs.items():
        bound = mine.inputs[key]
        assert len(bound) == len(argument.arguments), f"{where} {key}"
        for got, binding in zip(bound, argument.arguments):
            if binding.WhichOneof("binding") == "name":
                assert got == Var(binding.name), f"{where} {key}"
            else:
                _assert_same(got, their.value(binding.value), f"{where} {key}")
    assert [tuple(o) for o in mine.outputs] == [(o.name, *_spec_type(o.type))
                                                for o in theirs.outputs], where
    assert sorted(mine.attributes) == sorted(set(theirs.attributes) - {"name"}), where
    for key, value in theirs.attributes.items():
        if key != "name":
            _assert_same(mine.attributes[key], their.value(value), f"{where} @{key}")
    assert len(mine.blocks) == len(theirs.blocks), where
    for block, their_block in zip(mine.blocks, theirs.blocks):
        assert block.outputs == list(their_block.outputs), where
        assert [tuple(i) for i in block.inputs] == [(i.name, *_spec_type(i.type))
                                                    for i in their_block.inputs], where
        assert len(block.ops) == len(their_block.operations), where
        for op, their_op in zip(block.ops, their_block.operations):
            _compare_op(op, their_op, their)


def _feature(feature) -> tuple:
    from coremltools.proto import FeatureTypes_pb2

    array = feature.type.multiArrayType
    name = FeatureTypes_pb2.ArrayFeatureType.ArrayDataType.Name(array.dataType)
    return feature.name, ARRAY_TYPES[name], tuple(array.shape)


def _compare_package(package: Path) -> set[str]:
    """Assert the reader agrees with coremltools on `package`; the blob dtypes seen."""
    import coremltools as ct

    spec = ct.utils.load_spec(str(package))
    function = spec.mlProgram.functions["main"]
    block = function.block_specializations[function.opset]
    program = read_package(package)
    assert program.specification_version == spec.specificationVersion
    assert [tuple(f) for f in program.inputs] == [_feature(f) for f in spec.description.input]
    assert [tuple(f) for f in program.outputs] == [_feature(f) for f in spec.description.output]
    assert (program.function, program.opset) == ("main", function.opset)
    assert [tuple(i) for i in program.function_inputs] == [(i.name, *_spec_type(i.type))
                                                           for i in function.inputs]
    assert program.block_outputs == list(block.outputs)
    assert len(program.ops) == len(block.operations)
    their = _Their(package)
    for op, their_op in zip(program.ops, block.operations):
        _compare_op(op, their_op, their)
    return their.blob_dtypes


# ---- agreement with coremltools ------------------------------------------------------------

@pytest.mark.parametrize("name", [*CONVERTED, *COMPRESSED])
def test_reader_agrees_with_coremltools(packages, name):
    seen = _compare_package(packages[name])
    expected = CONVERTED[name][2] if name in CONVERTED else COMPRESSED[name][3]
    assert expected <= seen, f"{name}: blob dtypes {seen}"


def test_program_shape_of_an_ios17_fp16_package(packages):
    program = read_package(packages["ios17_fp16"])
    assert program.opset == "CoreML7" and read_package(packages["ios18_fp16"]).opset == "CoreML8"
    assert [f.dtype for f in program.inputs] == ["float32"]        # fp32 in, behind a cast
    assert program.outputs[0].dtype == "float16" and program.outputs[0].shape == (1, 10)
    by_type = {op.type: op for op in program.ops}
    assert by_type["cast"].inputs["x"] == [Var(program.function_inputs[0].name)]
    assert len(by_type["concat"].inputs["values"]) == 2             # a variadic binding
    weights = [op.attributes["val"] for op in program.ops
               if op.type == "const" and getattr(op.attributes["val"], "ndim", 0) == 4]
    assert weights and all(w.dtype == np.float16 and not w.flags.writeable for w in weights)
    assert program.block_outputs == [program.ops[-1].outputs[0].name]


def _write_blobs(path: Path, rng) -> dict[str, tuple[int, tuple]]:
    """A weight file with one blob of every type coremltools can write (odd sizes)."""
    from coremltools.libmilstoragepython import _BlobStorageWriter

    writer, offsets = _BlobStorageWriter(str(path), truncate_file=True), {}
    for dtype, method in BLOB_WRITES.items():
        shape = (3, 7)
        if dtype in ("FLOAT16", "FLOAT32"):
            values = rng.standard_normal(shape).astype(np.float32)
            values = values.astype(np.float16).view(np.uint16) if dtype == "FLOAT16" else values
        else:
            info = {"INT4": (-8, 8), "UINT1": (0, 2), "UINT2": (0, 4), "UINT3": (0, 8),
                    "UINT4": (0, 16), "UINT6": (0, 64)}.get(dtype)
            numpy_type = np.dtype(dtype.lower()) if info is None else (
                np.int8 if dtype == "INT4" else np.uint8)
            low, high = info or (np.iinfo(numpy_type).min, np.iinfo(numpy_type).max)
            values = rng.integers(low, high, shape, endpoint=info is None).astype(numpy_type)
        offsets[dtype] = (getattr(writer, f"write_{method}_data")(values.ravel()), shape)
    del writer                                   # flushes the file
    return offsets


def _immediates(rng) -> list:
    """Values of every immediate kind, serialized by coremltools' own MIL helpers."""
    from coremltools.converters.mil.backend.mil import helper
    from coremltools.converters.mil.mil import types
    from coremltools.proto import MIL_pb2

    arrays = [rng.standard_normal((2, 3)).astype(np.float16),
              rng.standard_normal((5,)).astype(np.float32),
              rng.integers(-128, 128, (4, 2)).astype(np.int8),
              rng.integers(0, 256, (3,)).astype(np.uint8),
              np.int16([-30000, 7]), np.uint16([65535, 1]), np.int32([-5, 1 << 30]),
              np.int64([1 << 40, -3]), np.uint32([4000000000, 2, 3]),
              np.array([True, False, True]),
              rng.integers(-8, 8, (3, 3)).astype(types.np_int4_dtype)]
    for bits in (1, 2, 3, 4, 6):
        dtype = getattr(types, f"np_uint{bits}_dtype")
        arrays.append(rng.integers(0, 1 << bits, (7,)).astype(dtype))
    values = [helper.create_tensor_value(a) for a in arrays]
    strings = helper.create_tensor_value(np.zeros((3,), np.int32))  # helper fails on str arrays
    strings.type.tensorType.dataType = MIL_pb2.DataType.STRING
    strings.immediateValue.tensor.strings.values.extend(["ab", "c", "é"])
    values.append(strings)
    values += [helper.create_scalar_value(v) for v in (np.float16(0.1), np.float32(-2.5),
                                                        np.int32(7), True, "same")]
    values.append(helper.create_list_scalarvalue(["x", "yz"], str))
    return values


def test_hand_made_program_with_every_dtype_agrees_with_coremltools(packages, tmp_path):
    import coremltools as ct
    from coremltools.converters.mil.backend.mil import helper
    from coremltools.proto import MIL_pb2

    package = Path(shutil.copytree(packages["ios18_fp16"], tmp_path / "hand.mlpackage"))
    rng = np.random.default_rng(0)
    offsets = _write_blobs(package / WEIGHTS.parent / "extra.bin", rng)
    spec = ct.utils.load_spec(str(package))
    function = spec.mlProgram.functions["main"]
    block = function.block_specializations[function.opset]
    values = _immediates(rng) + [
        helper.create_file_value_tensor("@model_path/weights/extra.bin", offset, shape,
                                        MIL_pb2.DataType.Value(dtype))
        for dtype, (offset, shape) in offsets.items()]
    for index, value in enumerate(values):
        op = block.operations.add(type="const")
        op.outputs.add(name=f"hand_{index}").type.CopyFrom(value.type)
        op.attributes["val"].CopyFrom(value)
        op.inputs["x"].arguments.add().value.CopyFrom(value)      # bound as an input too
    nested = block.operations.add(type="cond")                      # a nested block
    nested.outputs.add(name="hand_cond").type.CopyFrom(block.operations[0].outputs[0].type)
    inner = nested.blocks.add()
    inner.operations.add().CopyFrom(block.operations[0])
    inner.outputs.append(block.operations[0].outputs[0].name)
    (package / SPEC).write_bytes(spec.SerializeToString())

    seen = _compare_package(package)
    assert {d.upper() for d in BLOB_WRITES} <= seen
    program = read_package(package)
    assert program.ops[-1].blocks[0].ops[0].name == program.ops[0].name


def test_sub_byte_unpacking_matches_coremltools_packing():
    from coremltools.optimize import _utils

    rng = np.random.default_rng(1)
    for nbits, signed in [(1, False), (2, False), (3, False), (4, False), (6, False),
                          (4, True), (8, False)]:
        for count in (1, 5, 13, 64):
            low, high = (-(1 << nbits - 1), 1 << nbits - 1) if signed else (0, 1 << nbits)
            values = rng.integers(low, high, count).astype(np.int8 if signed else np.uint8)
            packed = _utils.pack_elements_into_bits(values, nbits)
            got = unpack_bits(packed, nbits, count, signed)
            assert got.dtype == values.dtype and (got == values).all(), (nbits, count)


def test_bfloat16_and_float8_widen_exactly_like_torch():
    import torch

    raw = np.arange(256, dtype=np.uint8).tobytes()
    for name, torch_type in [("float8e4m3fn", torch.float8_e4m3fn),
                             ("float8e5m2", torch.float8_e5m2)]:
        want = torch.frombuffer(bytearray(raw), dtype=torch_type).float().numpy()
        got = decode(raw, name, 256)
        assert got.dtype == np.float16
        np.testing.assert_array_equal(got.astype(np.float32), want, err_msg=name)
    bits = np.random.default_rng(2).integers(0, 1 << 16, 1000).astype(np.uint16)
    bits = bits[(bits & 0x7F80) != 0x7F80]                          # finite values only
    want = torch.frombuffer(bytearray(bits.tobytes()), dtype=torch.bfloat16).float().numpy()
    np.testing.assert_array_equal(decode(bits.tobytes(), "bfloat16", bits.size), want)
    assert BLOB_DTYPES[5] == "bfloat16" and BLOB_DTYPES[16] == "float8e4m3fn"


# ---- refusals ------------------------------------------------------------------------------

def _first_blob(package: Path) -> int:
    """The offset of the first blob a const op names, as coremltools reads the spec."""
    import coremltools as ct

    spec = ct.utils.load_spec(str(package))
    function = spec.mlProgram.functions["main"]
    for op in function.block_specializations[function.opset].operations:
        if op.type == "const" and op.attributes["val"].HasField("blobFileValue"):
            return op.attributes["val"].blobFileValue.offset
    raise AssertionError("no blob")


def _patch(path: Path, offset: int, data: bytes) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset:offset + len(data)] = data
    path.write_bytes(bytes(raw))


def _truncate(path: Path, size: int) -> None:
    path.write_bytes(path.read_bytes()[:size])


def _spec_offset_past_end(package: Path) -> None:
    import coremltools as ct

    spec = ct.utils.load_spec(str(package))
    function = spec.mlProgram.functions["main"]
    for op in function.block_specializations[function.opset].operations:
        if op.type == "const" and op.attributes["val"].HasField("blobFileValue"):
            op.attributes["val"].blobFileValue.offset = 1 << 40
            break
    (package / SPEC).write_bytes(spec.SerializeToString())


def _manifest(package: Path, edit) -> None:
    manifest = json.loads((package / "Manifest.json").read_text())
    edit(manifest)
    (package / "Manifest.json").write_text(json.dumps(manifest))


def _root_path(manifest: dict, path: str) -> None:
    manifest["itemInfoEntries"][manifest["rootModelIdentifier"]]["path"] = path


CORRUPTIONS = {
    "truncated weight.bin": (lambda p, b: _truncate(p / WEIGHTS, b + 70), "outside the file"),
    "weight.bin shorter than its header": (lambda p, b: (p / WEIGHTS).write_bytes(b"\0" * 10),
                                           "header"),
    "empty weight.bin": (lambda p, b: (p / WEIGHTS).write_bytes(b""), "header"),
    "missing weight.bin": (lambda p, b: (p / WEIGHTS).unlink(), "weight.bin"),
    "bad sentinel": (lambda p, b: _patch(p / WEIGHTS, b, b"\x01\x02\x03\x04"), "sentinel"),
    "unknown blob dtype": (lambda p, b: _patch(p / WEIGHTS, b + 4, struct.pack("<I", 99)),
                           "dtype code 99"),
    "blob dtype differs from the program's": (
        lambda p, b: _patch(p / WEIGHTS, b + 4, struct.pack("<I", 2)), "holds float32"),
    "huge blob size": (lambda p, b: _patch(p / WEIGHTS, b + 8, struct.pack("<Q", 1 << 60)),
                       "outside the file"),
    "data offset past the end": (lambda p, b: _patch(p / WEIGHTS, b + 16,
                                                     struct.pack("<Q", 1 << 62)),
                                 "outside the file"),
    "storage version 1": (lambda p, b: _patch(p / WEIGHTS, 4, struct.pack("<I", 1)),
                          "version 1"),
    "spec offset past the end": (lambda p, b: _spec_offset_past_end(p), "no blob record"),
    "missing Manifest.json": (lambda p, b: (p / "Manifest.json").unlink(), "Manifest.json"),
    "Manifest.json not JSON": (lambda p, b: (p / "Manifest.json").write_text("{"),
                               "Manifest.json"),
    "unknown root model": (lambda p, b: _manifest(p, lambda m: m.update(rootModelIdentifier="x")),
                           "root model"),
    "root model leaves the package": (
        lambda p, b: _manifest(p, lambda m: _root_path(m, "../../../etc/passwd")),
        "leaves the package"),
    "missing model spec": (lambda p, b: (p / SPEC).unlink(), "no model spec"),
    "spec not protobuf": (lambda p, b: (p / SPEC).write_bytes(b"\xff" * 64), "protobuf"),
    "spec without ML program": (lambda p, b: (p / SPEC).write_bytes(b"\x08\x07"),
                                "no ML program"),
}


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_a_broken_package_is_refused_in_one_line(packages, tmp_path, case):
    package = Path(shutil.copytree(packages["ios17_fp16"], tmp_path / "broken.mlpackage"))
    damage, words = CORRUPTIONS[case]
    damage(package, _first_blob(package))
    with pytest.raises(PocketError) as caught:
        read_package(package)
    text = str(caught.value)
    assert text.startswith(f"{package} is not a readable Core ML package: "), text
    assert words in text and "\n" not in text, text


@pytest.mark.parametrize("what", ["empty folder", "a file", "nothing"])
def test_something_else_is_refused(tmp_path, what):
    path = tmp_path / "thing"
    if what == "empty folder":
        path.mkdir()
    elif what == "a file":
        path.write_bytes(b"hello")
    with pytest.raises(PocketError, match="is not a readable Core ML package"):
        read_package(path)


def test_an_unknown_function_is_refused(packages):
    with pytest.raises(PocketError, match="no function 'other'"):
        read_package(packages["ios17_fp16"], function="other")


# ---- import cost and speed -----------------------------------------------------------------

def test_importing_the_reader_pulls_in_neither_coremltools_nor_torch():
    code = ("import sys, runtime_py.runtimes.coreml.program; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'coremltools', 'torch'}))")
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                         text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_reading_is_fast(packages):
    package = packages["ios18_p6"]
    read_package(package)
    start = time.perf_counter()
    program = read_package(package)
    seconds = time.perf_counter() - start
    # ~0.02 ms per op measured (773-op SkipNet-M fp16 in ~16 ms); headroom for a busy box
    assert seconds < 0.5e-3 * len(program.ops) + 0.01, (seconds, len(program.ops))

"""Core ML weight files (MIL blob storage, version 2) and packed tensor bytes.

Layout (facts of coremltools' `MILBlob/Blob/StorageFormat.hpp`), little-endian:
- a 64-byte file header: uint32 blob count, uint32 version (2), reserved;
- per blob, at the offset a program's `blobFileValue` names, a 64-byte record: uint32
  sentinel 0xDEADBEEF, uint32 blob dtype (`BLOB_DTYPES`, not MIL.proto's DataType codes),
  uint64 size in bytes, uint64 data offset, uint64 unused padding bits, reserved;
- the data, 64-byte aligned. Sub-byte types are packed least-significant bit first.

Everything is checked against the file's size before it is touched, so a corrupt offset
or size gives a `BlobError`, never a huge allocation. Data of byte-sized types are
read-only views of a memory map (no copy).
"""
from __future__ import annotations

import math
import mmap
import struct
from pathlib import Path
from typing import NamedTuple

import numpy as np

from runtime_py.errors import PocketError

# MILBlob BlobDataType (Blob/BlobDataType.hpp): blob dtype code -> dtype name.
BLOB_DTYPES: dict[int, str] = {
    1: "float16", 2: "float32", 3: "uint8", 4: "int8", 5: "bfloat16", 6: "int16",
    7: "uint16", 8: "int4", 9: "uint1", 10: "uint2", 11: "uint4", 12: "uint3", 13: "uint6",
    14: "int32", 15: "uint32", 16: "float8e4m3fn", 17: "float8e5m2",
}
SUB_BYTE_BITS: dict[str, int] = {"int4": 4, "uint1": 1, "uint2": 2, "uint3": 3, "uint4": 4,
                                 "uint6": 6}
# Types numpy lacks: stored as (raw numpy type, numpy type returned).
_WIDENED: dict[str, tuple[str, str]] = {"bfloat16": ("uint16", "float32"),
                                        "float8e4m3fn": ("uint8", "float16"),
                                        "float8e5m2": ("uint8", "float16")}
SENTINEL = 0xDEADBEEF
RECORD = 64
_HEADER = struct.Struct("<II")
_SIZES = {"float16", "float32", "float64", "bfloat16", "float8e4m3fn", "float8e5m2", "int8",
          "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"}
_METADATA = struct.Struct("<IIQQQ")


class BlobError(PocketError):
    """A weight file or packed tensor that does not hold what the program says."""


class BlobInfo(NamedTuple):
    """One blob's metadata record."""

    dtype: str
    size: int          # bytes
    data_offset: int
    padding_bits: int


def numpy_dtype(dtype: str) -> np.dtype:
    """The numpy type a tensor of MIL type `dtype` is returned as (int4 -> int8, ...)."""
    if dtype in SUB_BYTE_BITS:
        return np.dtype(np.int8 if dtype.startswith("int") else np.uint8)
    if dtype in _WIDENED:
        return np.dtype(_WIDENED[dtype][1])
    if dtype == "str":
        return np.dtype(object)
    return np.dtype(dtype)


def unpack_bits(raw: np.ndarray, nbits: int, count: int, signed: bool) -> np.ndarray:
    """`count` integers of `nbits` bits packed least-significant bit first in `raw` (uint8),
    as int8 (sign-extended) if `signed`, else uint8."""
    if raw.size != -(-count * nbits // 8):
        raise BlobError(f"{raw.size} bytes do not hold {count} {nbits}-bit values")
    bits = np.unpackbits(raw, bitorder="little")[: count * nbits].reshape(count, nbits)
    values = np.packbits(bits, axis=1, bitorder="little").reshape(count)
    if not signed:
        return values
    half = 1 << (nbits - 1)
    return ((values.astype(np.int16) ^ half) - half).astype(np.int8)


def _fp8e4m3fn_table() -> np.ndarray:
    """float16 value of every float8 e4m3fn byte (bias 7, no infinities, S.1111.111 NaN)."""
    codes = np.arange(256)
    exponent, mantissa = (codes >> 3) & 0xF, codes & 7
    normal = np.ldexp(1.0 + mantissa / 8.0, exponent - 7)
    value = np.where(exponent == 0, np.ldexp(mantissa / 8.0, -6), normal)
    value = np.where((exponent == 15) & (mantissa == 7), np.nan, value)
    return np.where(codes >= 128, -value, value).astype(np.float16)


def _widen(raw: np.ndarray, dtype: str) -> np.ndarray:
    """Exact float32/float16 values of bfloat16 or float8 bit patterns."""
    if dtype == "bfloat16":
        return (raw.astype(np.uint32) << 16).view(np.float32)
    if dtype == "float8e5m2":
        return (raw.astype(np.uint16) << 8).view(np.float16)
    return _fp8e4m3fn_table()[raw]


def decode(buffer: object, dtype: str, count: int, offset: int = 0,
           size: int | None = None) -> np.ndarray:
    """`count` values of MIL type `dtype` from `size` bytes of `buffer` at `offset`
    (flat). Byte-sized types must fill the bytes exactly; sub-byte ones are unpacked."""
    size = len(memoryview(buffer).cast("B")) - offset if size is None else size
    if dtype in SUB_BYTE_BITS:
        raw = np.frombuffer(buffer, np.uint8, size, offset)
        return unpack_bits(raw, SUB_BYTE_BITS[dtype], count, dtype.startswith("int"))
    if dtype not in _SIZES:
        raise BlobError(f"{dtype} values cannot be stored as bytes")
    raw_type = np.dtype(_WIDENED[dtype][0] if dtype in _WIDENED else dtype)
    if count * raw_type.itemsize != size:
        raise BlobError(f"{size} bytes do not hold {count} {dtype} values")
    raw = np.frombuffer(buffer, raw_type, count, offset)
    return _widen(raw, dtype) if dtype in _WIDENED else raw



class BlobFile:
    """One weight.bin, memory-mapped; `read` returns a blob as a numpy array."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            with open(self.path, "rb") as file:
                self.size = self.path.stat().st_size
                if self.size < RECORD:
                    raise BlobError(f"{self.path.name} is {self.size} bytes, shorter than "
                                    f"its {RECORD}-byte header")
                self._map = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        except OSError as exc:
            raise BlobError(f"cannot read {self.path.name}: {exc.strerror or exc}") from None
        self.count, self.version = _HEADER.unpack_from(self._map, 0)
        if self.version != 2:
            raise BlobError(f"{self.path.name} has storage version {self.version}, not 2")

    def info(self, offset: int) -> BlobInfo:
        """The metadata record at `offset`, checked against the file."""
        where = f"{self.path.name} at offset {offset}"
        if offset < RECORD or offset + RECORD > self.size:
            raise BlobError(f"{where}: no blob record there (file is {self.size} bytes)")
        sentinel, code, size, data, padding = _METADATA.unpack_from(self._map, offset)
        if sentinel != SENTINEL:
            raise BlobError(f"{where}: bad sentinel 0x{sentinel:08X}")
        if code not in BLOB_DTYPES:
            raise BlobError(f"{where}: unknown blob dtype code {code}")
        if data < offset + RECORD or data + size > self.size:
            raise BlobError(f"{where}: data of {size} bytes at {data} lies outside the file")
        return BlobInfo(BLOB_DTYPES[code], size, data, padding)

    def read(self, offset: int, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
        """The blob at `offset`, which must hold `dtype` values of `shape`."""
        info = self.info(offset)
        if info.dtype != dtype:
            raise BlobError(f"{self.path.name} at offset {offset} holds {info.dtype}, "
                            f"the program declares {dtype}")
        count = math.prod(shape)
        try:
            flat = decode(self._map, dtype, count, info.data_offset, info.size)
        except BlobError as exc:
            raise BlobError(f"{self.path.name} at offset {offset}: {exc}") from None
        return flat.reshape(shape)

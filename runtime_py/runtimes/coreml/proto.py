"""Protobuf message classes for the part of Core ML's format a program reader needs.

Built in code from field numbers and types (facts of Core ML's `Model.proto`, `MIL.proto`,
`FeatureTypes.proto`), in a private descriptor pool, so reading a package never imports
coremltools. Simplifications that keep the wire format identical:
- enums are declared as int32 (both are varints); `DATA_TYPES` names the MIL codes;
- protobuf maps are declared as repeated key/value entry messages (a map's wire form), so
  they read as lists of `.key` / `.value` in file order;
- messages whose content is not needed are declared empty; unknown fields are skipped.
"""
from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_PACKAGE = "pocketvision.coreml"

# MIL.proto DataType: code -> dtype name (numpy's where numpy has the type).
DATA_TYPES: dict[int, str] = {
    1: "bool", 2: "str", 10: "float16", 11: "float32", 12: "float64", 13: "bfloat16",
    21: "int8", 22: "int16", 23: "int32", 24: "int64", 25: "int4",
    31: "uint8", 32: "uint16", 33: "uint32", 34: "uint64", 35: "uint4", 36: "uint2",
    37: "uint1", 38: "uint6", 39: "uint3", 40: "float8e4m3fn", 41: "float8e5m2",
}
# FeatureTypes.proto ArrayFeatureType.ArrayDataType: code -> numpy dtype name.
ARRAY_DATA_TYPES: dict[int, str] = {
    65552: "float16", 65568: "float32", 65600: "float64", 131080: "int8", 131104: "int32",
}

_SCALARS = {"double": 1, "float": 2, "int64": 3, "uint64": 4, "int32": 5, "bool": 8,
            "string": 9, "bytes": 12}
_OPTIONAL, _REPEATED = 1, 3

# message -> (fields "name number type", type a scalar or a message, "*" = repeated;
#             oneof groups: name -> member fields)
_MESSAGES: dict[str, tuple[tuple[str, ...], dict[str, tuple[str, ...]]]] = {
    "Empty": ((), {}),
    # Model.proto / FeatureTypes.proto
    "Model": (("specificationVersion 1 int32", "description 2 ModelDescription",
               "mlProgram 502 Program"), {}),
    "ModelDescription": (("input 1 *FeatureDescription", "output 10 *FeatureDescription",
                          "state 13 *FeatureDescription", "functions 20 *FunctionDescription",
                          "defaultFunctionName 21 string"), {}),
    "FunctionDescription": (("name 1 string", "input 2 *FeatureDescription",
                             "output 3 *FeatureDescription", "state 6 *FeatureDescription"),
                            {}),
    "FeatureDescription": (("name 1 string", "shortDescription 2 string",
                            "type 3 FeatureType"), {}),
    "FeatureType": (("int64Type 1 Empty", "doubleType 2 Empty", "stringType 3 Empty",
                     "imageType 4 ImageFeatureType", "multiArrayType 5 ArrayFeatureType",
                     "dictionaryType 6 Empty", "sequenceType 7 Empty",
                     "stateType 8 StateFeatureType", "isOptional 1000 bool"),
                    {"Type": ("int64Type", "doubleType", "stringType", "imageType",
                              "multiArrayType", "dictionaryType", "sequenceType",
                              "stateType")}),
    "ArrayFeatureType": (("shape 1 *int64", "dataType 2 int32",
                          "enumeratedShapes 21 ShapeList", "shapeRange 31 ShapeRange"), {}),
    "ShapeList": (("shapes 1 *Shape",), {}),
    "Shape": (("shape 1 *int64",), {}),
    "ShapeRange": (("sizeRanges 1 *SizeRange",), {}),
    "SizeRange": (("lowerBound 1 uint64", "upperBound 2 int64"), {}),
    "ImageFeatureType": (("width 1 int64", "height 2 int64", "colorSpace 3 int32"), {}),
    "StateFeatureType": (("arrayType 1 ArrayFeatureType",), {}),
    # MIL.proto
    "Program": (("version 1 int64", "functions 2 *FunctionEntry", "docString 3 string",
                 "attributes 4 *ValueEntry"), {}),
    "FunctionEntry": (("key 1 string", "value 2 Function"), {}),
    "Function": (("inputs 1 *NamedValueType", "opset 2 string",
                  "block_specializations 3 *BlockEntry", "attributes 4 *ValueEntry"), {}),
    "BlockEntry": (("key 1 string", "value 2 Block"), {}),
    "Block": (("inputs 1 *NamedValueType", "outputs 2 *string", "operations 3 *Operation",
               "attributes 4 *ValueEntry"), {}),
    "Operation": (("type 1 string", "inputs 2 *ArgumentEntry", "outputs 3 *NamedValueType",
                   "blocks 4 *Block", "attributes 5 *ValueEntry"), {}),
    "ArgumentEntry": (("key 1 string", "value 2 Argument"), {}),
    "ValueEntry": (("key 1 string", "value 2 Value"), {}),
    "Argument": (("arguments 1 *Binding",), {}),
    "Binding": (("name 1 string", "value 2 Value"), {"binding": ("name", "value")}),
    "NamedValueType": (("name 1 string", "type 2 ValueType"), {}),
    "ValueType": (("tensorType 1 TensorType", "listType 2 ListType", "tupleType 3 TupleType",
                   "dictionaryType 4 DictionaryType", "stateType 5 StateType"),
                  {"type": ("tensorType", "listType", "tupleType", "dictionaryType",
                            "stateType")}),
    "TensorType": (("dataType 1 int32", "rank 2 int64", "dimensions 3 *Dimension",
                    "attributes 4 *ValueEntry"), {}),
    "TupleType": (("types 1 *ValueType",), {}),
    "ListType": (("type 1 ValueType", "length 2 Dimension"), {}),
    "DictionaryType": (("keyType 1 ValueType", "valueType 2 ValueType"), {}),
    "StateType": (("wrappedType 1 ValueType",), {}),
    "Dimension": (("constant 1 ConstantDimension", "unknown 2 UnknownDimension"),
                  {"dimension": ("constant", "unknown")}),
    "ConstantDimension": (("size 1 uint64",), {}),
    "UnknownDimension": (("variadic 1 bool",), {}),
    "Value": (("docString 1 string", "type 2 ValueType", "immediateValue 3 ImmediateValue",
               "blobFileValue 5 BlobFileValue"),
              {"value": ("immediateValue", "blobFileValue")}),
    "ImmediateValue": (("tensor 1 TensorValue", "tuple 2 ValueList", "list 3 ValueList",
                        "dictionary 4 DictionaryValue"),
                       {"value": ("tensor", "tuple", "list", "dictionary")}),
    "BlobFileValue": (("fileName 1 string", "offset 2 uint64"), {}),
    "TensorValue": (("floats 1 Floats", "ints 2 Ints", "bools 3 Bools", "strings 4 Strings",
                     "longInts 5 LongInts", "doubles 6 Doubles", "bytes 7 Bytes"),
                    {"value": ("floats", "ints", "bools", "strings", "longInts", "doubles",
                               "bytes")}),
    "Floats": (("values 1 *float",), {}),
    "Doubles": (("values 1 *double",), {}),
    "Ints": (("values 1 *int32",), {}),
    "LongInts": (("values 1 *int64",), {}),
    "Bools": (("values 1 *bool",), {}),
    "Strings": (("values 1 *string",), {}),
    "Bytes": (("values 1 bytes",), {}),
    "ValueList": (("values 1 *Value",), {}),
    "DictionaryValue": (("values 1 *KeyValuePair",), {}),
    "KeyValuePair": (("key 1 Value", "value 2 Value"), {}),
}


def _add_message(file: descriptor_pb2.FileDescriptorProto, name: str,
                 fields: tuple[str, ...], oneofs: dict[str, tuple[str, ...]]) -> None:
    """Append one message (flat, proto3) to `file`."""
    message = file.message_type.add(name=name)
    groups = list(oneofs)
    for group in groups:
        message.oneof_decl.add(name=group)
    for text in fields:
        field_name, number, kind = text.split()
        field = message.field.add(name=field_name, number=int(number), json_name=field_name)
        field.label = _REPEATED if kind.startswith("*") else _OPTIONAL
        kind = kind.lstrip("*")
        if kind in _SCALARS:
            field.type = _SCALARS[kind]
        else:
            field.type = 11
            field.type_name = f".{_PACKAGE}.{kind}"
        for index, group in enumerate(groups):
            if field_name in oneofs[group]:
                field.oneof_index = index


def _build() -> Any:
    """The `Model` message class, from a private pool (no clash with coremltools')."""
    file = descriptor_pb2.FileDescriptorProto(
        name="pocketvision_coreml.proto", package=_PACKAGE, syntax="proto3")
    for name, (fields, oneofs) in _MESSAGES.items():
        _add_message(file, name, fields, oneofs)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.Model"))


Model = _build()


def parse_model(data: bytes) -> Any:
    """The `Model` message in `data` (raises google.protobuf.message.DecodeError)."""
    model = Model()
    model.ParseFromString(data)
    return model

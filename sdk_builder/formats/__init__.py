"""The formats table: one row per export format. CLI choices, validation, `pocket list`
and the README's format table are all generated from FORMATS and TARGETS.

Each row names a module in this package exposing
    export(job: ExportJob) -> ExportResult
which imports its heavy toolchain inside the function, so reading this table stays fast.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from runtime_py.errors import UsageError, did_you_mean


@dataclass(frozen=True)
class Format:
    name: str                   # CLI name
    suffix: str                 # artifact suffix
    backend: str                # goes into the artifact file name
    runtime: str                # runtime_py backend that runs it here
    recipes: tuple[str, ...]    # recipes this format accepts, default first
    module: str                 # module in sdk_builder.formats with export()
    summary: str
    runs_on: str                # where the artifact runs
    verified_here: str          # how a build on this desktop verifies it

    def exporter(self) -> Callable[["ExportJob"], "ExportResult"]:
        return importlib.import_module(f"{__name__}.{self.module}").export

    def artifact_name(self, model: str, recipe: str) -> str:
        return f"{model}.{self.backend}.{recipe}{self.suffix}"


@dataclass
class ExportJob:
    """What a format needs to export one artifact."""

    module: Any                                   # torch.nn.Module in eval mode
    examples: tuple                               # one torch.Tensor per forward argument
    recipe: str
    out_path: Path                                # file (or .mlpackage folder) to write
    calibration: Callable[[], Iterable[Any]] | None = None   # yields inputs (tuples if several)
    keep_float: tuple = ()                        # nn.Module classes PT2E int8 leaves float
    input_names: tuple[str, ...] = ("input",)     # the manifest's names, where a format keeps names


@dataclass
class ExportResult:
    path: Path
    details: dict = field(default_factory=dict)   # recipe numbers for the manifest
    delegation: dict | None = None                # {"delegated_share": float, "fallback_ops": [...]}
    quantized_module: Any = None                  # torch module computing what the artifact does
                                                  # (PT2E recipes), for the layer-wise report


FORMATS: tuple[Format, ...] = (
    Format("executorch-xnnpack", ".pte", "xnnpack", "executorch",
           ("fp32", "int8-dynamic", "int8-static", "int8-static-per-tensor", "int8da-w4g32"),
           "executorch_xnnpack", "ExecuTorch program delegated to XNNPACK", "Android, iOS, Linux, macOS",
           "ExecuTorch runtime: golden inputs + evaluation split"),
    Format("litert", ".tflite", "litert", "litert",
           ("fp32", "fp16", "int8-dynamic", "int8-static", "w8"),
           "litert", "LiteRT (TFLite) flatbuffer, float I/O", "Android, iOS, Linux, macOS",
           "LiteRT Interpreter: golden inputs + evaluation split"),
    Format("coreml", ".mlpackage", "coreml", "coreml",
           ("fp16", "w8", "palettize-6bit", "palettize-4bit", "prune-50"),
           "coreml", "Core ML ML program (iOS 17)", "iOS 17+, macOS 14+",
           "Core ML on macOS; elsewhere runtime_py's ML-program interpreter (emulated, fp16 "
           "per op): golden inputs + evaluation split"),
    Format("executorch-coreml", ".pte", "coreml", "executorch", ("fp16", "w8"),
           "executorch_coreml", "ExecuTorch program delegated to Core ML", "iOS 17+, macOS 14+",
           "Core ML on Apple OSes; elsewhere its embedded ML program in runtime_py's "
           "interpreter (emulated): golden inputs + evaluation split"),
)

TARGETS: dict[str, tuple[tuple[str, str], ...]] = {
    "android": (("executorch-xnnpack", "fp32"), ("executorch-xnnpack", "int8-static"),
                ("litert", "fp32"), ("litert", "int8-static")),
    "ios": (("coreml", "fp16"), ("coreml", "w8"), ("executorch-coreml", "fp16")),
}
TARGETS["desktop"] = TARGETS["android"]
TARGETS["all"] = TARGETS["android"] + TARGETS["ios"]

RECIPES: dict[str, str] = {
    "fp32": "float32 weights and activations",
    "fp16": "float16 weights; Core ML also computes in float16, LiteRT dequantizes the "
            "weights to float32 on CPU",
    "int8-dynamic": "int8 per-channel symmetric weights, activations quantized to int8 at run "
                    "time (no calibration); float inputs/outputs kept",
    "int8-static": "PT2E int8: per-channel symmetric weights, per-tensor activations "
                   "calibrated on the model's calibration data; float inputs/outputs kept",
    "int8-static-per-tensor": "as int8-static but one weight scale per tensor (older NPUs/DSPs "
                              "that lack per-channel int8)",
    "int8da-w4g32": "nn.Linear layers with in_features divisible by 32: int4 weights in groups "
                    "of 32, int8 dynamic activations (torchao); the rest float32",
    "w8": "int8 linear weight quantization (weights only), float compute",
    "palettize-6bit": "Core ML: per-tensor k-means look-up table of 64 values per weight "
                      "(data-free), fp16 compute",
    "palettize-4bit": "Core ML: per-tensor k-means look-up table of 16 values per weight "
                      "(data-free), fp16 compute",
    "prune-50": "Core ML: 50% of each weight tensor's smallest-magnitude values zeroed, stored "
                "sparse (data-free), fp16 compute; without sparse fine-tuning this can wreck "
                "accuracy (SkipNet-M: 98.0% -> 13.7%, measured with the Core ML interpreter). "
                "Core ML activation quantization "
                "(a8w8) is not offered: its calibration needs Core ML prediction, i.e. macOS",
}


def get_format(name: str) -> Format:
    for fmt in FORMATS:
        if fmt.name == name:
            return fmt
    raise UsageError(f"unknown format '{name}'{did_you_mean(name, [f.name for f in FORMATS])}")


def plan_target(target: str, recipes: Iterable[str] | None = None) -> list[tuple[Format, str]]:
    """The (format, recipe) pairs of a target, narrowed to `recipes` when given."""
    if target not in TARGETS:
        raise UsageError(f"unknown target '{target}'{did_you_mean(target, TARGETS)}; "
                         f"choose one of {', '.join(TARGETS)}")
    pairs = [(get_format(f), r) for f, r in TARGETS[target]]
    if not recipes:
        return pairs
    recipes = list(dict.fromkeys(recipes))
    formats = list(dict.fromkeys(f for f, _ in pairs))
    offered = sorted({r for f in formats for r in f.recipes})
    for r in recipes:
        if r not in offered:
            raise UsageError(f"recipe '{r}' is not offered for target '{target}'"
                             f"{did_you_mean(r, offered)}; its formats accept: {', '.join(offered)}")
    return [(f, r) for f in formats for r in recipes if r in f.recipes]


def formats_markdown_table() -> str:
    """The README's formats x recipes table."""
    rows = ["| format | file | runs on | recipes | verified here with |",
            "|---|---|---|---|---|"]
    for f in FORMATS:
        rows.append(f"| `{f.name}` | `{f.suffix}` | {f.runs_on} | "
                    f"{', '.join(f'`{r}`' for r in f.recipes)} | {f.verified_here} |")
    return "\n".join(rows)

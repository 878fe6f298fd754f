"""The formats table: one row per export format. CLI choices, validation, `pocket list`
and the README's format table are all generated from FORMATS and TARGETS.

Each row names a module in this package exposing
    export(job: ExportJob) -> ExportResult
which does only what is that format's own: it imports its heavy toolchain inside the
function (reading this table stays fast) and writes job.out_path. The skeleton every export
shares (recipe check, output prepared, toolchains quiet, versions recorded) is Format.export.
Recipes are records in sdk_builder.quantize.recipes; a row lists the ones its format offers.
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
    tag: str                    # the artifact file name's tag: {model}.{tag}.{recipe}{suffix}
    runtime: str                # the runtime that runs it (manifest "runtime", runtime_py.runtimes)
    recipes: tuple[str, ...]    # recipes this format accepts, default first
    module: str                 # module in sdk_builder.formats with export()
    summary: str
    runs_on: str                # where the artifact runs
    verified_here: str          # how a build on this desktop verifies it
    toolchain: tuple[str, ...] = ()   # distributions that write it (versions go in the details)
    # what the runtime hands ops to (manifest "delegate"); None: the runtime runs it all itself
    delegate: str | None = field(kw_only=True)

    def exporter(self) -> Callable[["ExportJob"], "ExportResult"]:
        return importlib.import_module(f"{__name__}.{self.module}").export

    def export(self, job: "ExportJob") -> "ExportResult":
        """Export one artifact: the skeleton every format shares around its module's export."""
        from sdk_builder.formats._common import prepare_out, quiet_toolchains, version

        if job.recipe not in self.recipes:
            raise UsageError(f"format '{self.name}' has no recipe '{job.recipe}'"
                             f"{did_you_mean(job.recipe, self.recipes)}; it accepts: "
                             f"{', '.join(self.recipes)}")
        job.out_path = prepare_out(Path(job.out_path))
        with quiet_toolchains():
            result = self.exporter()(job)
        result.details = {"toolchain": ", ".join(f"{d} {version(d)}" for d in self.toolchain),
                          "torch": version("torch"), **result.details}
        return result

    def artifact_name(self, model: str, recipe: str) -> str:
        return f"{model}.{self.tag}.{recipe}{self.suffix}"


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
           "ExecuTorch runtime: golden inputs + evaluation split", ("executorch",),
           delegate="xnnpack"),
    Format("litert", ".tflite", "litert", "litert",
           ("fp32", "fp16", "int8-dynamic", "int8-static", "w8"),
           "litert", "LiteRT (TFLite) flatbuffer, float I/O", "Android, iOS, Linux, macOS",
           "LiteRT Interpreter: golden inputs + evaluation split", ("litert-torch",),
           delegate="xnnpack"),                # LiteRT applies XNNPACK by default
    Format("coreml", ".mlpackage", "coreml", "coreml",
           ("fp16", "w8", "palettize-6bit", "palettize-4bit", "prune-50"),
           "coreml", "Core ML ML program (iOS 17)", "iOS 17+, macOS 14+",
           "Core ML on macOS; elsewhere runtime_py's ML-program interpreter (emulated, fp16 "
           "per op): golden inputs + evaluation split", ("coremltools",),
           delegate=None),
    Format("executorch-coreml", ".pte", "coreml", "executorch", ("fp16", "w8"),
           "executorch_coreml", "ExecuTorch program delegated to Core ML", "iOS 17+, macOS 14+",
           "Core ML on Apple OSes; elsewhere its embedded ML program in runtime_py's "
           "interpreter (emulated): golden inputs + evaluation split",
           ("executorch", "coremltools"), delegate="coreml"),
)

TARGETS: dict[str, tuple[tuple[str, str], ...]] = {
    "android": (("executorch-xnnpack", "fp32"), ("executorch-xnnpack", "int8-static"),
                ("litert", "fp32"), ("litert", "int8-static")),
    "ios": (("coreml", "fp16"), ("coreml", "w8"), ("executorch-coreml", "fp16")),
}
TARGETS["desktop"] = TARGETS["android"]
TARGETS["all"] = TARGETS["android"] + TARGETS["ios"]

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

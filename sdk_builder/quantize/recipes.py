"""Quantization recipes as records: one row per recipe, the one place their properties live.

Verification, the canonicalizing passes, the budget search, the report, bench and the CLI ask
a record (`recipe("int8-static").calibrated`) instead of testing names. Which formats offer a
recipe is the formats table's business (sdk_builder.formats); how a format implements it is
the format module's. A recipe that does not apply to a model says why (`why_not(module)`),
and the build turns that into a reported row instead of an abort. Importing this is cheap:
torch is imported only inside the applicability checks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from runtime_py.errors import UsageError, did_you_mean

W4_GROUP = 32      # int8da-w4g32: weights quantized in groups of 32 input features


@dataclass(frozen=True)
class Recipe:
    name: str
    summary: str
    quantizes: str               # "nothing", "weights", "weights and activations"
    compute: str                 # the arithmetic: "float32", "float16", "int8", or "float"
                                 # (the format's own float precision)
    calibrated: bool = False     # needs calibration data (static activation ranges)
    applies: Callable[[Any], str | None] | None = None   # module -> why not, or None
    applies_to: str = "any model"                         # the same in words (pocket list)
    needs_layers: bool = False   # quantizes nn.Module layers by type: exported as written,
                                 # not as the canonical graph (where no layer modules remain)

    @property
    def reference(self) -> bool:
        """Computes what PyTorch computes (float32, nothing quantized): an artifact of it
        must reproduce PyTorch to the fp32 tolerance or the build fails."""
        return self.quantizes == "nothing" and self.compute == "float32"

    @property
    def integer(self) -> bool:
        """Integer arithmetic (activations quantized), not just compressed weights."""
        return self.compute == "int8"

    def why_not(self, module: Any) -> str | None:
        """Why this recipe does not apply to `module` (the model as the user wrote it), or None."""
        return self.applies(module) if self.applies else None


def _w4_linear(layer: Any) -> bool:
    import torch

    return isinstance(layer, torch.nn.Linear) and layer.in_features % W4_GROUP == 0


def w4_linears(module: Any) -> list:
    """The nn.Linear layers int8da-w4g32 quantizes."""
    return [m for m in module.modules() if _w4_linear(m)]


def _needs_w4_linear(module: Any) -> str | None:
    import torch

    if w4_linears(module):
        return None
    linears = sum(isinstance(m, torch.nn.Linear) for m in module.modules())
    return (f"no nn.Linear with in_features divisible by {W4_GROUP} "
            f"({linears} nn.Linear layer{'' if linears == 1 else 's'} in the model)")


RECIPES: tuple[Recipe, ...] = (
    Recipe("fp32", "float32 weights and activations", "nothing", "float32"),
    Recipe("fp16", "float16 weights; Core ML also computes in float16, LiteRT dequantizes the "
           "weights to float32 on CPU", "weights", "float16"),
    Recipe("int8-dynamic", "int8 per-channel symmetric weights, activations quantized to int8 "
           "at run time (no calibration); float inputs/outputs kept",
           "weights and activations", "int8"),
    Recipe("int8-static", "PT2E int8: per-channel symmetric weights, per-tensor activations "
           "calibrated on the model's calibration data; float inputs/outputs kept",
           "weights and activations", "int8", calibrated=True),
    Recipe("int8-static-per-tensor", "as int8-static but one weight scale per tensor (older "
           "NPUs/DSPs that lack per-channel int8)", "weights and activations", "int8",
           calibrated=True),
    Recipe("int8da-w4g32", f"nn.Linear layers with in_features divisible by {W4_GROUP}: int4 "
           f"weights in groups of {W4_GROUP}, int8 dynamic activations (torchao); the rest "
           "float32", "weights and activations", "int8", applies=_needs_w4_linear,
           applies_to=f"models with an nn.Linear whose in_features is divisible by {W4_GROUP}",
           needs_layers=True),
    Recipe("w8", "int8 linear weight quantization (weights only), float compute", "weights",
           "float"),
    Recipe("palettize-6bit", "Core ML: per-tensor k-means look-up table of 64 values per "
           "weight (data-free), fp16 compute", "weights", "float16"),
    Recipe("palettize-4bit", "Core ML: per-tensor k-means look-up table of 16 values per "
           "weight (data-free), fp16 compute", "weights", "float16"),
    Recipe("prune-50", "Core ML: 50% of each weight tensor's smallest-magnitude values zeroed, "
           "stored sparse (data-free), fp16 compute; without sparse fine-tuning this can wreck "
           "accuracy (SkipNet-M: 98.0% -> 13.7%, measured with the Core ML interpreter). Core "
           "ML activation quantization (a8w8) is not offered: its calibration needs Core ML "
           "prediction, i.e. macOS", "weights", "float16"),
)
REFERENCE = next(r.name for r in RECIPES if r.reference)    # what "vs fp32" compares with


def recipe(name: str) -> Recipe:
    """The record of a recipe, or a UsageError with a suggestion."""
    for row in RECIPES:
        if row.name == name:
            return row
    raise UsageError(f"unknown recipe '{name}'{did_you_mean(name, [r.name for r in RECIPES])}")


def names() -> list[str]:
    return [r.name for r in RECIPES]

"""Canonicalizing passes: small rewrites of a model's captured ATen graph that keep its
numbers and hand each converter the form it was written and tested against.

The converters reject graphs that differ from their test models by a default argument:
`F.max_pool2d(x, 2)` is captured as max_pool2d(x, [2, 2]) with the stride left out, and
XNNPACK's partitioner then reads args[2] (IndexError), Core ML's converter counts inputs
("expected minimum 3"). `canonicalize(module, examples, fmt, recipe)` captures the model
once with torch.export, runs the passes that concern `fmt` and `recipe`, checks the rewritten graph against the
model on the example inputs, and returns it (a GraphModule that the format's exporter
captures again) with the names of the passes that changed something; the manifest records
them per artifact. A model no pass touches is returned as it came.

PASSES below is the one list of rewrites of the user's model. (Rewrites a toolchain needs
on its own intermediate graph stay in that exporter, e.g. count_include_pad in
executorch_xnnpack, which also runs for zoo models and PT2E output.) Each pass is a function graph_module -> number of rewrites,
tested against eager in tests/unit/test_canonical.py. The passes that only widen XNNPACK's
delegate live in canonical_delegation, the graph-editing helpers in canonical_graph.
"""
from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runtime_py.errors import PocketError, one_line
from sdk_builder.passes import xnnpack as xnn
from sdk_builder.quantize import recipes
from sdk_builder.passes._graph import _aten, _calls, _new, _pair, _replace, _shape

PARITY_TOLERANCE = 1e-5          # relative to the output's scale: rewrites only reorder maths


@dataclass(frozen=True)
class Pass:
    name: str
    summary: str
    rewrite: Callable[[Any], int]
    formats: tuple[str, ...] | None = None      # None: before every format's export
    skip_calibrated: bool = False               # not for recipes with calibrated int8 activations

    def concerns(self, fmt: str, recipe: str | None = None) -> bool:
        if self.formats is not None and fmt not in self.formats:
            return False
        return not (self.skip_calibrated and recipe is not None and recipes.recipe(recipe).calibrated)


# ---------------------------------------------------------------- the passes
def pool_defaults(gm: Any) -> int:
    """max/avg pooling with its stride written out (default: the kernel size). torch.export
    drops arguments equal to their defaults; a missing stride is the one converters trip on."""
    aten = _aten()
    changed = 0
    for node in _calls(gm, aten.max_pool2d.default, aten.max_pool2d_with_indices.default,
                       aten.avg_pool2d.default):
        args = list(node.args)
        stride = node.kwargs.get("stride", args[2] if len(args) > 2 else None)
        if stride not in (None, []):
            continue
        kwargs = {k: v for k, v in node.kwargs.items() if k != "stride"}
        args = args + [None] * max(0, 3 - len(args))
        args[2] = _pair(args[1], 1)
        names = ("padding", "dilation", "ceil_mode") if node.target != aten.avg_pool2d.default \
            else ("padding", "ceil_mode", "count_include_pad", "divisor_override")
        defaults = {"padding": [0, 0], "dilation": [1, 1], "ceil_mode": False,
                    "count_include_pad": True, "divisor_override": None}
        for i, name in enumerate(names, start=3):       # positional from here on
            if len(args) <= i:
                args.append(kwargs.pop(name, defaults[name]))
        node.args, node.kwargs = tuple(args), kwargs
        changed += 1
    return changed


def adaptive_avg_pool_to_fixed(gm: Any) -> int:
    """adaptive_avg_pool2d to an output size that divides the input: a mean over H, W for
    1x1, else an avg_pool2d with kernel = stride = input / output."""
    aten = _aten()
    changed = 0
    for node in _calls(gm, aten.adaptive_avg_pool2d.default, aten._adaptive_avg_pool2d.default):
        shape = _shape(node.args[0])
        if shape is None or len(shape) != 4:
            continue
        out = _pair(node.args[1], 1)
        h, w = shape[2:]
        if any(o is None or o <= 0 for o in out) or h % out[0] or w % out[1]:
            continue
        if out == [1, 1]:
            new = _new(gm, node, aten.mean.dim, (node.args[0], [-2, -1], True))
        else:
            k = [h // out[0], w // out[1]]
            new = _new(gm, node, aten.avg_pool2d.default, (node.args[0], k, k, [0, 0], False, False, None))
        new.meta["val"] = node.meta.get("val")
        _replace(gm, node, new)
        changed += 1
    return changed


def group_norm_explicit(gm: Any) -> int:
    """group_norm as reshape (N, G, C/G, H*W) -> mean / variance over (2, 3) -> affine: ops
    XNNPACK takes, where the native op stays off the delegate (ExecuTorch) or lowers to
    BROADCAST_TO (LiteRT)."""
    aten = _aten()
    changed = 0
    for node in _calls(gm, aten.group_norm.default):
        x = node.args[0]
        shape = _shape(x)
        if shape is None or len(shape) < 3:
            continue
        groups = int(node.args[1])
        weight = node.args[2] if len(node.args) > 2 else None
        bias = node.args[3] if len(node.args) > 3 else None
        eps = float(node.args[4]) if len(node.args) > 4 else 1e-5
        n, c = shape[:2]
        spatial = 1
        for d in shape[2:]:
            spatial *= d
        if c % groups:
            continue
        new = lambda target, *args: _new(gm, node, target, args)  # noqa: E731
        grouped = new(aten.reshape.default, x, [n, groups, c // groups, spatial])
        mean = new(aten.mean.dim, grouped, [2, 3], True)
        centred = new(aten.sub.Tensor, grouped, mean)
        var = new(aten.mean.dim, new(aten.mul.Tensor, centred, centred), [2, 3], True)
        scale = new(aten.rsqrt.default, new(aten.add.Tensor, var, eps))
        y = new(aten.reshape.default, new(aten.mul.Tensor, centred, scale), list(shape))
        per_channel = [1, c] + [1] * (len(shape) - 2)
        if weight is not None:
            y = new(aten.mul.Tensor, y, new(aten.reshape.default, weight, per_channel))
        if bias is not None:
            y = new(aten.add.Tensor, y, new(aten.reshape.default, bias, per_channel))
        _replace(gm, node, y)
        changed += 1
    return changed


def small_powers_as_products(gm: Any) -> int:
    """x ** 2 as x * x, x ** 0.5 as sqrt(x), x ** 1 as x, x ** -1 as 1 / x (LiteRT: "failed
    to legalize operation 'tfl.pow'")."""
    aten = _aten()
    changed = 0
    for node in _calls(gm, aten.pow.Tensor_Scalar):
        x, exponent = node.args[0], node.args[1]
        if exponent == 2:
            new = _new(gm, node, aten.mul.Tensor, (x, x))
        elif exponent == 0.5:
            new = _new(gm, node, aten.sqrt.default, (x,))
        elif exponent == -1:
            new = _new(gm, node, aten.reciprocal.default, (x,))
        elif exponent == 1:
            new = x
        else:
            continue
        _replace(gm, node, new)
        changed += 1
    return changed


def drop_no_ops(gm: Any) -> int:
    """alias, lift_fresh_copy, eval-mode dropout and cat of one tensor: their input instead
    (XNNPACK refuses a one-input cat). Copies made by clone/contiguous stay: a later view
    may need the contiguous layout."""
    aten = _aten()
    changed = 0
    for node in _calls(gm, aten.alias.default, aten.dropout.default, aten.lift_fresh_copy.default,
                       aten.cat.default):
        if node.target == aten.dropout.default and (len(node.args) < 3 or node.args[2]):
            continue                                  # train=True: not a no-op
        if node.target == aten.cat.default:
            if len(node.args[0]) != 1 or node.args[0][0].op == "placeholder":
                continue                              # else the graph may return its input
            _replace(gm, node, node.args[0][0])
            changed += 1
            continue
        _replace(gm, node, node.args[0])
        changed += 1
    return changed


def fold_input_free_subgraphs(gm: Any) -> int:
    """Values computed without the inputs (torch.arange grids, anchors, ones/zeros) become
    constants; integer ones feeding float maths become float constants (exact below 2**24),
    so no converter or int8 observer meets an integer tensor (PT2E: '"histogram_cpu" not
    implemented for Long')."""
    import torch

    free: set = set()
    parameters = {name for name, _ in gm.named_parameters()}
    for node in gm.graph.nodes:
        if node.op == "get_attr":
            if node.target not in parameters:     # weights stay where quantizers look for them
                free.add(node)
        elif node.op == "call_function" and node.target is not operator.getitem and \
                all(a in free for a in node.all_input_nodes) and _pure(node):
            free.add(node)
        elif node.op == "call_function" and node.target is operator.getitem and \
                node.args[0] in free:
            free.add(node)
    for node in list(gm.graph.nodes):      # dtype/shape asserts on values about to be constants
        if node.op == "call_function" and "_assert" in str(node.target) and \
                node.args and node.args[0] in free and not node.users:
            gm.graph.erase_node(node)
    roots = [n for n in free if n.op == "call_function" and
             any(u not in free for u in n.users)]
    if not roots:
        return 0
    values = _evaluate(gm, free)
    folded = 0
    for node in roots:
        value = values.get(node)
        if not isinstance(value, torch.Tensor) or value.numel() > (1 << 20):
            continue
        if not value.is_floating_point() and _feeds_float_maths(node):
            if value.numel() and value.abs().max() >= (1 << 24):
                continue                          # not exact in float32: leave it alone
            value = value.to(torch.float32)
        name = f"_pocket_folded_{folded}"
        gm.register_buffer(name, value.clone())
        with gm.graph.inserting_before(node):
            const = gm.graph.get_attr(name)
        const.meta.update({k: node.meta[k] for k in ("stack_trace", "val") if k in node.meta})
        node.replace_all_uses_with(const)
        folded += 1
    gm.graph.eliminate_dead_code()
    return folded


_IMPURE = ("rand", "randn", "randint", "normal", "bernoulli", "dropout", "empty", "_assert")


def _pure(node: Any) -> bool:
    name = str(node.target)
    return not any(word in name for word in _IMPURE) and not name.endswith("_.default")


def _feeds_float_maths(node: Any) -> bool:
    return any(u.meta.get("val") is not None and getattr(u.meta["val"], "is_floating_point", lambda: False)()
               for u in node.users)


def _evaluate(gm: Any, nodes: set) -> dict:
    import torch

    env: dict = {}
    for node in gm.graph.nodes:
        if node not in nodes:
            continue
        if node.op == "get_attr":
            value = gm
            for part in node.target.split("."):
                value = getattr(value, part)
            env[node] = value
            continue
        args = torch.fx.node.map_arg(node.args, lambda n: env[n])
        kwargs = torch.fx.node.map_arg(node.kwargs, lambda n: env[n])
        with torch.no_grad():
            env[node] = node.target(*args, **kwargs)
    return env


def static_view_shapes(gm: Any) -> int:
    """view / reshape with -1 and flatten as reshape to the static shape torch.export
    recorded (converters differ in how they infer -1 and which flatten forms they take)."""
    aten = _aten()
    changed = 0
    for node in _calls(gm, aten.view.default, aten.reshape.default, aten.flatten.using_ints,
                       aten._unsafe_view.default):
        shape = _shape(node)
        if shape is None or (node.target != aten.flatten.using_ints and
                             list(node.args[1]) == list(shape)):
            continue                                # already static: nothing to say
        new = _new(gm, node, aten.reshape.default, (node.args[0], list(shape)))
        new.meta["val"] = node.meta.get("val")
        _replace(gm, node, new)
        changed += 1
    return changed


_XNNPACK = ("executorch-xnnpack",)

PASSES: tuple[Pass, ...] = (
    Pass("drop-no-ops", "alias / eval-mode dropout / one-tensor cat removed", drop_no_ops),
    Pass("fold-input-free-subgraphs", "input-independent values (arange grids, anchors) "
         "folded to constants, integers to float where float maths reads them",
         fold_input_free_subgraphs),
    Pass("pool-defaults", "pooling stride / padding / dilation / ceil_mode written out",
         pool_defaults),
    Pass("adaptive-avg-pool-to-fixed", "adaptive_avg_pool2d to a dividing size as mean or "
         "avg_pool2d", adaptive_avg_pool_to_fixed),
    Pass("small-powers-as-products", "x**2 -> x*x, x**0.5 -> sqrt(x), x**-1 -> 1/x",
         small_powers_as_products),
    Pass("static-view-shapes", "view / reshape(-1) / flatten as reshape to static sizes",
         static_view_shapes),
    Pass("group-norm-explicit", "group_norm as reshape + mean + rsqrt + affine (XNNPACK "
         "takes these)", group_norm_explicit, formats=("executorch-xnnpack", "litert")),
    # Not for static int8: LayerNorm's statistics in int8 cost ViT-tiny accuracy (cosine to
    # PyTorch 0.994 -> 0.988) for the last ops off the delegate.
    Pass("layer-norm-explicit", "layer_norm as reshape + mean + rsqrt + affine (XNNPACK "
         "takes these)", xnn.layer_norm_explicit, formats=_XNNPACK, skip_calibrated=True),
    Pass("attention-explicit", "scaled_dot_product_attention without mask as "
         "softmax(q @ k^T * scale) @ v", xnn.attention_explicit, formats=_XNNPACK),
    Pass("matmul-as-bmm", "batched matmul as reshape + bmm + reshape (no expand)",
         xnn.matmul_as_bmm, formats=_XNNPACK),
    # Not for static int8: a delegated mean next to an fp32 sub reading the same quantized
    # tensor fails XNNPACK's graph build (convnext: "Failed to create XNNSubtract node").
    Pass("reductions-as-global-pool", "mean / sum over any dims as a 4-D mean over the "
         "last two dims with keepdim, plus permute / reshape", xnn.reductions_as_global_pool,
         formats=_XNNPACK, skip_calibrated=True),
    # Not for static int8 (neither are the avg-pool pass below): XNNPACK then fails to create
    # the static slice / StaticConstantPad node at load (shufflenet_v2, two_outputs,
    # inception_style in the corpus run).
    Pass("select-split-as-slices", "select / split / chunk as slices",
         xnn.select_and_split_as_slices, formats=_XNNPACK, skip_calibrated=True),
    Pass("expand-as-broadcast", "no-op expands and expands feeding broadcasting "
         "elementwise ops dropped", xnn.expand_as_broadcast, formats=_XNNPACK),
    Pass("avg-pool-padding-explicit", "avg_pool2d counting zero padding as constant_pad_nd "
         "+ unpadded avg_pool2d", xnn.avg_pool_padding_explicit, formats=_XNNPACK,
         skip_calibrated=True),
    Pass("nearest-upsample-as-cat", "integer-factor nearest upsampling as cat of copies + "
         "reshape", xnn.nearest_upsample_as_cat, formats=_XNNPACK),
)


class CaptureError(PocketError):
    """The model could not be captured by torch.export."""


def capture(module: Any, examples: tuple) -> Any:
    """torch.export of the model, with what a user can do about a failure."""
    import torch

    from sdk_builder.diagnose import capture_failure

    try:
        return torch.export.export(module, examples)
    except Exception as exc:  # noqa: BLE001 - worded for the user by diagnose
        raise CaptureError(capture_failure(exc)) from None


def canonicalize(module: Any, examples: tuple, fmt: str,
                 recipe: str | None = None) -> tuple[Any, list[str]]:
    """(module for `fmt`'s exporter, names of the passes that rewrote something)."""
    import torch

    passes = [p for p in PASSES if p.concerns(fmt, recipe)]
    if not passes:
        return module, []
    gm = capture(module, examples).module()
    applied = []
    for p in passes:
        if p.rewrite(gm):
            gm.graph.lint()
            gm.recompile()
            applied.append(p.name)
    if not applied:
        return module, []
    # a plain GraphModule over the same graph and tensors: ep.module() refuses .eval()
    gm = torch.fx.GraphModule(gm, gm.graph, class_name=type(module).__name__)
    with torch.no_grad():
        want = module(*examples)
        try:
            got = gm(*examples)
        except Exception as exc:  # noqa: BLE001 - a rewrite broke the graph: our bug, worded
            raise PocketError(f"canonicalizing passes {', '.join(applied)} broke the model's graph "
                              f"({type(exc).__name__}: {one_line(exc)}); please report this with "
                              "the model file") from None
    _check_parity(want, got, applied)
    return gm, applied


def _check_parity(want: Any, got: Any, applied: list[str]) -> None:
    import torch

    want = want if isinstance(want, (tuple, list)) else (want,)
    got = got if isinstance(got, (tuple, list)) else (got,)
    for a, b in zip(want, got):
        scale = float(a.abs().max()) if a.numel() else 0.0
        err = float((a.float() - b.float()).abs().max()) if a.numel() else 0.0
        if a.shape != b.shape or not torch.isfinite(b).all() or err > PARITY_TOLERANCE * max(1.0, scale):
            raise PocketError(f"canonicalizing passes {', '.join(applied)} changed the model's "
                              f"outputs (max abs error {err:.2e}); please report this with the "
                              "model file")

"""Shared PT2E post-training quantization (torchao.quantization.pt2e).

Both the ExecuTorch/XNNPACK and the LiteRT exporters quantize the same way: capture the
model with torch.export, insert observers for the format's quantizer, calibrate on the
model's calibration data, convert to a graph with quantize/dequantize pairs. Only the
quantizer (and whether quantize ops are folded into int8 weights) differs per format.
torch/torchao are imported inside the functions so importing this module is cheap.
"""
from __future__ import annotations

import operator
from typing import Any, Iterable

from runtime_py.errors import UsageError


CALIBRATION_BATCH = 32   # samples per observer call when the batch dimension can be dynamic


def _as_samples(tensor: Any, example: Any) -> Any:
    """`tensor` as a [N, *example.shape[1:]] batch of calibration samples."""
    import torch

    t = torch.as_tensor(tensor).to(dtype=example.dtype)
    if t.dim() == example.dim() - 1:
        t = t.unsqueeze(0)
    if t.dim() != example.dim() or tuple(t.shape[1:]) != tuple(example.shape[1:]):
        raise UsageError(f"calibration tensor of shape {tuple(t.shape)} does not match the "
                         f"model input {tuple(example.shape)}; fix the model's calibration data")
    return t


def functional_inplace_ops(graph_module: Any) -> int:
    """Rewrite in-place aten ops (relu_, add_, hardtanh_ ...) as their functional twins.

    torch.export keeps `nn.ReLU(inplace=True)` as aten.relu_ in the training IR, and some
    PT2E quantizers (litert-torch's) cannot annotate it. The functional op writes a new
    value instead of mutating its first argument, so every later reader of that argument
    is re-pointed at the op's result. Returns the number of rewritten nodes."""
    import torch

    order = {node: i for i, node in enumerate(graph_module.graph.nodes)}
    rewritten = 0
    for node in list(graph_module.graph.nodes):
        target = node.target
        if node.op != "call_function" or not isinstance(target, torch._ops.OpOverload):
            continue
        name = target.overloadpacket.__name__
        if not name.endswith("_") or name.startswith("_") or not node.args:
            continue
        packet = getattr(torch.ops.aten, name[:-1], None)
        functional = getattr(packet, target._overloadname, None) if packet else None
        mutated = node.args[0]
        if functional is None or not isinstance(mutated, torch.fx.Node):
            continue
        node.target = functional
        for reader in list(mutated.users):
            if reader is not node and order[reader] > order[node]:
                reader.replace_input_with(mutated, node)
        rewritten += 1
    if rewritten:
        graph_module.graph.lint()
        graph_module.recompile()
    return rewritten


def separate_module_calls(graph_module: Any) -> int:
    """Give each call of a module that runs more than once its own source partition.

    torch.export names the second call of `self.pool` 'L__self__pool@1' in nn_module_stack
    but records the same path 'pool' for both, so quantizers that group nodes by module
    path (torch.fx get_source_partitions) see one partition with two outputs and annotate
    them crosswise (litert-torch's max_pool2d annotator then fails in prepare_pt2e).
    Appending the call index to the path ('pool@1') keeps the calls apart. Returns the
    number of nodes relabelled."""
    relabelled = 0
    for node in graph_module.graph.nodes:
        stack = node.meta.get("nn_module_stack")
        if not stack:
            continue
        for key, (path, kind) in list(stack.items()):
            _, sep, call = key.rpartition("@")
            if sep and call.isdigit() and not path.endswith(f"@{call}"):
                stack[key] = (f"{path}@{call}", kind)
                relabelled += 1
    return relabelled


def decompose_hardswish(graph_module: Any) -> int:
    """Rewrite hardswish(x) as x * hardtanh(x + 3, 0, 6) * (1/6); returns how many.

    For LiteRT int8: a PT2E quantizer that does not annotate hardswish leaves it between a
    dequantize and a quantize, which the converter fuses into an int8 HARD_SWISH that
    LiteRT's XNNPACK delegate does not take (it then runs on the builtin kernel and splits
    the delegate). ADD, RELU6 and MUL in int8 are delegated. The new nodes carry the
    source_fn_stack tags tracing gives `x + 3` and `x * y`, which is how quantizers find
    adds and muls, and the hardswish's fake value (all are elementwise, same shape)."""
    import operator

    import torch

    aten, graph, count = torch.ops.aten, graph_module.graph, 0
    for node in list(graph.nodes):
        if node.op != "call_function" or node.target != aten.hardswish.default:
            continue

        def op(target: Any, args: tuple, source: Any, step: int) -> Any:
            new = graph.call_function(target, args)
            new.meta.update({k: v for k, v in node.meta.items() if k != "source_fn_stack"})
            new.meta["source_fn_stack"] = [(f"{node.name}_decomposed_{step}", source)]
            return new

        x = node.args[0]
        with graph.inserting_before(node):
            three = _constant(graph_module, node, f"{node.name}_three", 3.0)
            sixth = _constant(graph_module, node, f"{node.name}_sixth", 1.0 / 6.0)
            shifted = op(aten.add.Tensor, (x, three), operator.add, 0)
            gate = op(aten.hardtanh.default, (shifted, 0.0, 6.0), torch.nn.functional.hardtanh, 1)
            scaled_gate = op(aten.mul.Tensor, (gate, sixth), operator.mul, 2)
            out = op(aten.mul.Tensor, (x, scaled_gate), operator.mul, 3)
        node.replace_all_uses_with(out)
        graph.erase_node(node)
        count += 1
    if count:
        graph.lint()
        graph_module.recompile()
    return count


def _constant(graph_module: Any, like: Any, name: str, value: float) -> Any:
    """A get_attr node of a constant broadcastable to `like`'s output, with `like`'s rank:
    a rank-0 constant would make litert-torch's layout pass keep the op in NCHW and wrap it
    in transposes (its elementwise ops go NHWC only when every input is 4-D)."""
    import torch

    val = like.meta.get("val")
    rank = val.dim() if hasattr(val, "dim") else 0
    graph_module.register_buffer(name, torch.full((1,) * rank, value))
    return graph_module.graph.get_attr(name)


def drop_integer_annotations(graph_module: Any) -> int:
    """Remove the quantization specs a quantizer put on values that are not floating-point
    tensors (indices, counts, integer constants); returns how many.

    Observers histogram or min/max floats, and an int8 q/dq pair around an integer value
    means nothing; such values stay as they are. litert-torch 0.10.0's quantizer makes
    such values itself: before annotating it turns the scalar operands of add/mul into
    tensor constants with torch.tensor(2), int64 for a Python int, and its mul/add
    annotators observe them ('"histogram_cpu" not implemented for 'Long'' in calibration).
    Specs shared with a removed one go too."""
    annotated = [(n, n.meta["quantization_annotation"]) for n in graph_module.graph.nodes
                 if n.meta.get("quantization_annotation") is not None]
    dropped: set = set()
    for node, annotation in annotated:
        for source in list(annotation.input_qspec_map):
            if _is_not_float(graph_module, source):
                del annotation.input_qspec_map[source]
                dropped.add((source, node))
        if annotation.output_qspec is not None and _is_not_float(graph_module, node):
            annotation.output_qspec = None
            dropped.add(node)
    while dropped and _drop_shared(annotated, dropped):
        pass
    return len(dropped)


def _drop_shared(annotated: list, dropped: set) -> bool:
    """Remove specs shared with a dropped edge or node; whether any went."""
    from torchao.quantization.pt2e.quantizer import SharedQuantizationSpec

    def shares(spec: Any) -> bool:
        return isinstance(spec, SharedQuantizationSpec) and spec.edge_or_node in dropped

    changed = False
    for node, annotation in annotated:
        for source, spec in list(annotation.input_qspec_map.items()):
            if shares(spec):
                del annotation.input_qspec_map[source]
                dropped.add((source, node))
                changed = True
        if shares(annotation.output_qspec):
            annotation.output_qspec = None
            dropped.add(node)
            changed = True
    return changed


def _is_not_float(graph_module: Any, node: Any) -> bool:
    """Whether `node` is known to carry something other than a floating-point tensor."""
    import torch

    val = node.meta.get("val")
    if val is None and node.op == "get_attr":      # quantizer-made constants carry no meta
        try:
            val = operator.attrgetter(node.target)(graph_module)
        except AttributeError:
            return False
    if isinstance(val, torch.Tensor):
        return not val.is_floating_point()
    return isinstance(val, (int, torch.SymInt, torch.SymBool))


def float_only(quantizer: Any) -> Any:
    """`quantizer`, with no observer on a non-floating value (drop_integer_annotations
    after it annotates). The quantizer itself is unchanged, e.g. for litert's converter."""
    from torchao.quantization.pt2e.quantizer import Quantizer

    class FloatOnly(Quantizer):
        def transform_for_annotation(self, model: Any) -> Any:
            return quantizer.transform_for_annotation(model)

        def annotate(self, model: Any) -> Any:
            quantizer.annotate(model)
            drop_integer_annotations(model)
            return model

        def validate(self, model: Any) -> None:
            quantizer.validate(model)

        def prepare_obs_or_fq_callback(self, model: Any, observers: dict) -> None:
            quantizer.prepare_obs_or_fq_callback(model, observers)

    return FloatOnly()


def _prepare_for_annotation(graph_module: Any, rewrites: tuple = ()) -> Any:
    functional_inplace_ops(graph_module)
    separate_module_calls(graph_module)
    for rewrite in rewrites:
        rewrite(graph_module)
    return graph_module


def _capture(module: Any, examples: tuple, rewrites: tuple = ()) -> tuple[Any, bool]:
    """torch.export the module for calibration; (graph module, batch_is_dynamic).

    Observers cost a near-constant time per call (HistogramObserver re-bins on every
    call: ~2.5 s per call for SkipNet-M on 2 cores), so calibrating one sample per call
    is ~15x slower than batches of 32. With batch-1 examples we therefore capture with a
    dynamic batch dimension (shared by every input); models that pin the batch fall back
    to a static capture."""
    import torch

    if all(x.shape[0] == 1 for x in examples):
        batch = torch.export.Dim("batch", min=1, max=4096)
        try:
            ep = torch.export.export(module, tuple(x.expand(2, *x.shape[1:]).clone() for x in examples),
                                     dynamic_shapes=tuple({0: batch} for _ in examples))
            return _prepare_for_annotation(ep.module(), rewrites), True
        except Exception:  # batch-specialised model (reshape to 1, ...): static capture
            pass
    return _prepare_for_annotation(torch.export.export(module, tuple(examples)).module(), rewrites), False


def _sample_tuple(item: Any, examples: tuple) -> tuple:
    """One calibration item as a tuple of [N, ...] batches, one per model input. A
    single-input model takes a tensor or an (inputs, target) pair; a model with several
    inputs takes a tuple of tensors in forward's order."""
    if len(examples) == 1:
        if isinstance(item, (tuple, list)):   # (inputs, target) pairs: take the inputs
            item = item[0]
        return (_as_samples(item, examples[0]),)
    if not isinstance(item, (tuple, list)) or len(item) != len(examples):
        raise UsageError(f"the model takes {len(examples)} inputs: each calibration sample must "
                         f"be a tuple of {len(examples)} tensors, in forward's order")
    batches = tuple(_as_samples(t, x) for t, x in zip(item, examples))
    if len({b.shape[0] for b in batches}) != 1:
        raise UsageError("a calibration sample's tensors have different batch sizes")
    return batches


def _calibration_batches(calibration_iter: Iterable[Any], examples: tuple, dynamic: bool):
    """Yield observer inputs (tuples, one tensor per model input): batches of up to
    CALIBRATION_BATCH samples when `dynamic`, else tensors shaped exactly like `examples`."""
    import torch

    want = examples[0].shape[0]
    pending, count = [], 0
    for item in calibration_iter:
        batch = _sample_tuple(item, examples)
        n = batch[0].shape[0]
        if not dynamic:
            if n == want:
                yield batch
            elif want == 1:
                yield from zip(*(t.split(1, dim=0) for t in batch))
            else:
                raise UsageError(f"calibration batch {n} does not fit the exported batch size {want}")
            continue
        pending.append(batch)
        count += n
        if count >= CALIBRATION_BATCH:
            yield tuple(torch.cat(parts) for parts in zip(*pending))
            pending, count = [], 0
    if pending:
        yield tuple(torch.cat(parts) for parts in zip(*pending))


def pt2e_quantize(module: Any, examples: tuple, quantizer: Any,
                  calibration_iter: Iterable[Any], *,
                  fold_quantize: bool = True, rewrites: tuple = ()) -> tuple[Any, int]:
    """Quantize `module` (example inputs `examples`, one tensor per forward argument) with a
    PT2E `quantizer`, calibrating on every sample of `calibration_iter` (tensors, [N, ...]
    batches, or (inputs, target) pairs; tuples of tensors for several inputs).

    Returns (quantized torch.fx.GraphModule with float inputs/outputs and q/dq nodes,
    number of calibration samples seen). `fold_quantize=False` keeps float weights
    behind quantize/dequantize pairs (what the LiteRT converter expects). `rewrites` are
    graph passes (e.g. decompose_hardswish) run on the captured graph before annotation,
    so every model gets them, however it spells the op. Whatever the quantizer annotates,
    no observer goes on a value that is not a floating-point tensor (float_only). The
    graph may have a dynamic batch dimension; exporters re-export it with their static
    examples.
    """
    import torch
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    module = module.eval()
    examples = tuple(examples)
    captured, dynamic = _capture(module, examples, rewrites)
    prepared = prepare_pt2e(captured, float_only(quantizer))
    samples = 0
    with torch.no_grad():
        for batch in _calibration_batches(calibration_iter, examples, dynamic):
            prepared(*batch)
            samples += int(batch[0].shape[0])
    if samples == 0:
        raise UsageError("static int8 recipes need calibration data but the calibration set is "
                         "empty; give the model a calibration function or pick a float recipe")
    quantized = convert_pt2e(prepared, fold_quantize=fold_quantize)
    return quantized, samples


def module_type_name(cls: type) -> str:
    """'package.module.Class': how torch.export's nn_module_stack names a module type."""
    return f"{cls.__module__}.{cls.__qualname__}"


def present_types(module: Any, classes: Iterable[type]) -> tuple[type, ...]:
    """The `classes` that `module` actually contains (an ExportJob's keep_float may name
    types the model does not use; recording those would be noise)."""
    subs = list(module.modules())
    return tuple(c for c in classes if any(isinstance(m, c) for m in subs))


def keep_float(quantizer: Any, classes: Iterable[type], *, by_name: bool = False) -> list[str]:
    """Leave every module of `classes` unquantized (`set_module_type(cls, None)`); returns
    their qualified names for the artifact's details. `by_name=True` passes the names:
    litert-torch's module-type filter compares the key with nn_module_stack's entries,
    which torch.export writes as strings, so a class would never match."""
    names = []
    for cls in classes:
        name = module_type_name(cls)
        quantizer.set_module_type(name if by_name else cls, None)
        names.append(name)
    return names


def calibration_for(job: Any) -> Iterable[Any]:
    """The job's calibration iterable, or a UsageError saying how to get one."""
    if job.calibration is None:
        raise UsageError(f"recipe '{job.recipe}' needs calibration data; the model has no "
                         "calibration function (add one to its ModelSpec or pick fp32)")
    return job.calibration()

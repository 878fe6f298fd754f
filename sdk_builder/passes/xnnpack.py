"""Canonicalizing passes for XNNPACK delegation: ops XNNPACK's partitioner refuses (or has
no rule for) rewritten, with the same numbers, into ops it takes, so the ExecuTorch program
stays one delegate call instead of falling back to the portable CPU kernels in between.
Listed in sdk_builder.passes.PASSES, scoped to the formats where they raise the
delegated share; tested against eager in tests/unit/test_canonical.py."""
from __future__ import annotations

import operator
from typing import Any

from sdk_builder.passes._graph import _aten, _calls, _new, _pair, _replace, _shape


def _product(values: Any) -> int:
    out = 1
    for v in values:
        out *= int(v)
    return out


def _reduced_dims(node: Any, rank: int) -> list[int] | None:
    dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
    if dims is None or (isinstance(dims, (list, tuple)) and not dims):
        return list(range(rank))                         # mean over everything
    dims = [dims] if isinstance(dims, int) else list(dims)
    return sorted({d % rank for d in dims}) if all(isinstance(d, int) for d in dims) else None


def _pooled_mean(gm: Any, before: Any, x: Any, rows: int, length: int) -> Any:
    """x viewed as (rows, 1, length, 1) and averaged over its last two dims with keepdim:
    the one mean XNNPACK lowers (global average pooling; with one channel the NHWC copy
    it makes is the same memory)."""
    aten = _aten()
    flat = _new(gm, before, aten.reshape.default, (x, [rows, 1, length, 1]))
    return _new(gm, before, aten.mean.dim, (flat, [2, 3], True))


def reductions_as_global_pool(gm: Any) -> int:
    """mean / sum over any dims as permute (kept dims first) -> reshape (kept, 1, reduced, 1)
    -> mean over the last two dims with keepdim -> (x count, for sum) -> reshape to the
    result's shape. XNNPACK lowers mean.dim only on 4-D tensors over dims (2, 3) with
    keepdim, and sum not at all."""
    aten = _aten()
    changed = 0
    for node in _calls(gm, aten.mean.dim, aten.mean.default, aten.sum.dim_IntList, aten.sum.default):
        x = node.args[0]
        shape, out = _shape(x), _shape(node)
        if shape is None or out is None or not shape or node.kwargs.get("dtype") is not None:
            continue
        dims = _reduced_dims(node, len(shape))
        keepdim = bool(node.args[2]) if len(node.args) > 2 else bool(node.kwargs.get("keepdim"))
        if dims is None or (node.target == aten.mean.dim and len(shape) == 4 and
                            dims == [2, 3] and keepdim):
            continue                                     # already the form XNNPACK takes
        length = _product(shape[d] for d in dims)
        if len(shape) == 4 and dims == [2, 3]:            # only keepdim (or sum) to add
            y = _new(gm, node, aten.mean.dim, (x, [2, 3], True))
        else:
            kept = [d for d in range(len(shape)) if d not in dims]
            order = kept + dims
            src = x if order == sorted(order) else _new(gm, node, aten.permute.default, (x, order))
            y = _pooled_mean(gm, node, src, _product(shape[d] for d in kept), length)
        if node.target in (aten.sum.dim_IntList, aten.sum.default):
            y = _new(gm, node, aten.mul.Tensor, (y, float(length)))
        y = _new(gm, node, aten.reshape.default, (y, list(out)))
        _replace(gm, node, y)
        changed += 1
    return changed


def layer_norm_explicit(gm: Any) -> int:
    """layer_norm over the last dims as reshape (rows, 1, features, 1) -> mean / variance by
    global average pooling -> rsqrt -> reshape -> affine; XNNPACK has no layer norm and
    leaves native_layer_norm on the portable CPU kernels."""
    aten = _aten()
    changed = 0
    for node in _calls(gm, aten.layer_norm.default, aten.native_layer_norm.default):
        x = node.args[0]
        shape = _shape(x)
        normalized = list(node.args[1])
        if shape is None or node.kwargs or not normalized or \
                list(shape[-len(normalized):]) != normalized:
            continue
        native = node.target == aten.native_layer_norm.default
        if native and any(u.target is not operator.getitem or u.args[1] != 0 for u in node.users):
            continue                                     # mean / rstd outputs are read
        weight, bias = (list(node.args[2:4]) + [None, None])[:2]
        eps = float(node.args[4]) if len(node.args) > 4 else 1e-5
        features = _product(normalized)
        new = lambda target, *args: _new(gm, node, target, args)  # noqa: E731
        flat = new(aten.reshape.default, x, [_product(shape) // features, 1, features, 1])
        centred = new(aten.sub.Tensor, flat, new(aten.mean.dim, flat, [2, 3], True))
        var = new(aten.mean.dim, new(aten.mul.Tensor, centred, centred), [2, 3], True)
        y = new(aten.mul.Tensor, centred, new(aten.rsqrt.default, new(aten.add.Tensor, var, eps)))
        y = new(aten.reshape.default, y, list(shape))
        if weight is not None:
            y = new(aten.mul.Tensor, y, weight)
        if bias is not None:
            y = new(aten.add.Tensor, y, bias)
        for user in list(node.users) if native else []:
            _replace(gm, user, y)
        if native:
            gm.graph.erase_node(node)
        else:
            _replace(gm, node, y)
        changed += 1
    return changed


def select_and_split_as_slices(gm: Any) -> int:
    """select(dim, i) as slice(i, i + 1) + reshape, split / chunk as one slice per piece:
    XNNPACK slices but has no select or split."""
    aten = _aten()
    changed = 0
    for node in _calls(gm, aten.select.int):
        shape, out = _shape(node.args[0]), _shape(node)
        if shape is None or out is None:
            continue
        dim = node.args[1] % len(shape)
        start = node.args[2] % shape[dim]
        piece = _new(gm, node, aten.slice.Tensor, (node.args[0], dim, start, start + 1))
        _replace(gm, node, _new(gm, node, aten.reshape.default, (piece, list(out))))
        changed += 1
    for node in _calls(gm, aten.split.Tensor, aten.split_with_sizes.default, aten.chunk.default):
        if _split_as_slices(gm, node):
            changed += 1
    return changed


def _split_as_slices(gm: Any, node: Any) -> bool:
    """Each getitem of a split / chunk node as a slice of its input; False if any other
    use reads the tuple itself."""
    aten = _aten()
    x, shape = node.args[0], _shape(node.args[0])
    pieces = node.meta.get("val")
    if shape is None or not isinstance(pieces, (list, tuple)) or \
            any(u.target is not operator.getitem for u in node.users):
        return False
    dim = (node.args[2] if len(node.args) > 2 else node.kwargs.get("dim", 0)) % len(shape)
    starts = [0]
    for piece in pieces:
        starts.append(starts[-1] + int(piece.shape[dim]))
    for user in list(node.users):
        i = user.args[1]
        _replace(gm, user, _new(gm, user, aten.slice.Tensor, (x, dim, starts[i], starts[i + 1])))
    gm.graph.erase_node(node)
    return True


_BROADCASTING = ("add.Tensor", "sub.Tensor", "mul.Tensor", "div.Tensor")


def expand_as_broadcast(gm: Any) -> int:
    """expand / expand_as to its input's own shape dropped, and expands read only by
    elementwise add / sub / mul / div whose result keeps its shape without them (the op
    broadcasts anyway): XNNPACK has no expand."""
    aten = _aten()
    changed = 0
    for node in _calls(gm, aten.expand.default, aten.expand_as.default):
        x = node.args[0]
        if _shape(x) is None or _shape(node) is None:
            continue
        if _shape(x) != _shape(node) and not all(_broadcasts_without(u, node) for u in node.users):
            continue
        _replace(gm, node, x)
        changed += 1
    return changed


def _broadcasts_without(user: Any, expand: Any) -> bool:
    """`user` is an elementwise op whose output shape stays the same when `expand`'s input
    is read in place of `expand`."""
    import torch

    if user.op != "call_function" or not str(user.target).endswith(_BROADCASTING):
        return False
    shapes = [_shape(expand.args[0]) if a is expand else
              (_shape(a) if hasattr(a, "meta") else ()) for a in user.args[:2]]
    if any(s is None for s in shapes):
        return False
    return tuple(torch.broadcast_shapes(*shapes)) == _shape(user)


def attention_explicit(gm: Any) -> int:
    """scaled_dot_product_attention without mask, dropout or causal flag as
    softmax(q @ k^T * scale) @ v on 3-D batches (bmm). Lowered as it is, ExecuTorch
    decomposes it into a masked "safe softmax" (where / any / eq / full_like) and expands
    that XNNPACK does not take."""
    import math

    aten = _aten()
    changed = 0
    for node in _calls(gm, aten.scaled_dot_product_attention.default):
        q, k, v = node.args[:3]
        extra = dict(zip(("attn_mask", "dropout_p", "is_causal"), node.args[3:6]), **node.kwargs)
        sq, sk, sv, out = (_shape(n) for n in (q, k, v, node))
        if None in (sq, sk, sv, out) or len(sq) < 3 or not sq[:-2] == sk[:-2] == sv[:-2] or \
                extra.get("attn_mask") is not None or extra.get("dropout_p", 0.0) or \
                extra.get("is_causal", False) or extra.get("enable_gqa", False):
            continue
        scale = extra.get("scale")
        scale = 1.0 / math.sqrt(sq[-1]) if scale is None else float(scale)
        new = lambda target, *args: _new(gm, node, target, args)  # noqa: E731
        keys_t = new(aten.transpose.int, _as_batch(gm, node, k, sk), 1, 2)
        scores = new(aten.bmm.default, _as_batch(gm, node, q, sq), keys_t)
        weights = new(aten.softmax.int, new(aten.mul.Tensor, scores, scale), -1)
        y = new(aten.bmm.default, weights, _as_batch(gm, node, v, sv))
        _replace(gm, node, new(aten.reshape.default, y, list(out)))
        changed += 1
    return changed


def _as_batch(gm: Any, before: Any, x: Any, shape: tuple[int, ...]) -> Any:
    """x (..., m, n) reshaped to (batch, m, n)."""
    return _new(gm, before, _aten().reshape.default, (x, [_product(shape[:-2]), *shape[-2:]]))


def matmul_as_bmm(gm: Any) -> int:
    """matmul of two tensors with the same (>= 1) batch dims as reshape to 3-D -> bmm ->
    reshape. Lowered as it is, matmul decomposes with expand_copy, which XNNPACK does not
    take."""
    aten = _aten()
    changed = 0
    for node in _calls(gm, aten.matmul.default):
        a, b = node.args[:2]
        sa, sb, out = _shape(a), _shape(b), _shape(node)
        if None in (sa, sb, out) or len(sa) < 3 or len(sa) != len(sb) or sa[:-2] != sb[:-2]:
            continue
        y = _new(gm, node, aten.bmm.default, (_as_batch(gm, node, a, sa), _as_batch(gm, node, b, sb)))
        _replace(gm, node, _new(gm, node, aten.reshape.default, (y, list(out))))
        changed += 1
    return changed


def avg_pool_padding_explicit(gm: Any) -> int:
    """avg_pool2d with zero padding counted in the average as constant_pad_nd(0) ->
    unpadded avg_pool2d: the same sums and divisor, where XNNPACK refuses the padded
    count_include_pad=True form."""
    aten = _aten()
    changed = 0
    names = ("self", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
             "divisor_override")
    for node in _calls(gm, aten.avg_pool2d.default):
        args = list(node.args) + [node.kwargs.get(name) for name in names[len(node.args):]]
        x, kernel, stride, padding, ceil_mode, include_pad, divisor = args
        padding = _pair(padding, 0)
        if not any(padding) or include_pad is False or ceil_mode or divisor is not None:
            continue
        ph, pw = padding
        padded = _new(gm, node, aten.constant_pad_nd.default, (x, [pw, pw, ph, ph], 0.0))
        new = _new(gm, node, aten.avg_pool2d.default,
                   (padded, kernel, stride or kernel, [0, 0], False, False, None))
        _replace(gm, node, new)
        changed += 1
    return changed


def nearest_upsample_as_cat(gm: Any) -> int:
    """upsample_nearest2d by integer factors up to 5 as copies joined by cat along a new
    trailing axis, then a reshape, for width and then height: exact, and XNNPACK (which
    resizes only bilinearly) concatenates up to 5 inputs."""
    aten = _aten()
    changed = 0
    for node in _calls(gm, aten.upsample_nearest2d.vec, aten.upsample_nearest2d.default):
        shape, out = _shape(node.args[0]), _shape(node)
        if shape is None or out is None or len(shape) != 4 or \
                any(o % i or not 1 <= o // i <= 5 for i, o in zip(shape[2:], out[2:])):
            continue
        n, c, h, w = shape
        sh, sw = out[2] // h, out[3] // w
        new = lambda target, *args: _new(gm, node, target, args)  # noqa: E731
        # one view per copy: XNNPACK's partitioner counts a cat's distinct inputs
        y = node.args[0]
        if sw > 1:
            y = new(aten.cat.default, [new(aten.reshape.default, y, [n, c, h, w, 1])
                                       for _ in range(sw)], 4)
        if sh > 1:
            y = new(aten.cat.default, [new(aten.reshape.default, y, [n, c, h, 1, w * sw])
                                       for _ in range(sh)], 3)
        _replace(gm, node, new(aten.reshape.default, y, list(out)))
        changed += 1
    return changed

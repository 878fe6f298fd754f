"""Each canonicalizing pass rewrites what it is for, and the rewritten graph computes what
the eager model computes; diagnosis names the user's line and a way out."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.fx.passes.shape_prop import ShapeProp

from sdk_builder import passes as canonical
from sdk_builder.passes import PASSES, canonicalize
from sdk_builder.diagnose import advice_for, capture_failure, export_failure, user_line_of

torch.manual_seed(0)


class Pools(nn.Module):
    def forward(self, x):
        return F.max_pool2d(x, 2) + F.avg_pool2d(x, 2) + nn.MaxPool2d(3, padding=1, stride=2)(x)


class Adaptive(nn.Module):
    def forward(self, x):
        return F.adaptive_avg_pool2d(x, 1).flatten(1) + F.adaptive_avg_pool2d(x, 2).mean((2, 3)) \
            + F.adaptive_avg_pool2d(x, 3).mean((2, 3))          # 8 % 3 != 0: left alone


class Norms(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gn = nn.GroupNorm(2, 6)
        self.gn_plain = nn.GroupNorm(3, 6, affine=False)
        with torch.no_grad():
            self.gn.weight.uniform_(0.5, 1.5)
            self.gn.bias.uniform_(-0.5, 0.5)

    def forward(self, x):
        return self.gn(x) + self.gn_plain(x * 3)


class Powers(nn.Module):
    def forward(self, x):
        return x ** 2 + x.abs() ** 0.5 + (x.abs() + 1) ** -1 + x ** 1 + x ** 3


class NoOps(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        return self.drop(x) * 2 + x.transpose(2, 3).contiguous().view(1, -1).view_as(x)


class Grid(nn.Module):
    """A YOLO-style decode: an integer grid built in forward."""

    def forward(self, x):
        n, c, h, w = x.shape
        ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        grid = torch.stack([xs, ys], 0).unsqueeze(0)
        offsets = torch.arange(w).float() ** 2         # .float() asserts the int64 dtype first
        return (x[:, :2].sigmoid() + grid) * 4 + offsets


class Views(nn.Module):
    def forward(self, x):
        return x.view(x.size(0), -1) + torch.flatten(x, 1) + x.reshape(1, -1)


class Reductions(nn.Module):
    """Means and sums XNNPACK refuses: no keepdim, channel dim, 3-D, all dims."""

    def forward(self, x):
        tokens = x.flatten(2).transpose(1, 2)                       # (N, HW, C)
        return x.mean((2, 3))[..., None, None] + x.mean(1, keepdim=True) \
            + tokens.mean(-1).view_as(x[:, :1]) + x.sum(1, keepdim=True) + x.sum((-1, -2))[..., None, None] \
            + x.mean() + x.mean((0, 2), keepdim=True)


class LayerNorms(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(8)
        self.ln_2d = nn.LayerNorm([6, 8], elementwise_affine=False)
        with torch.no_grad():
            self.ln.weight.uniform_(0.5, 1.5)
            self.ln.bias.uniform_(-0.5, 0.5)

    def forward(self, x):                                           # (N, 6, H, 8)
        return self.ln(x) + self.ln_2d(x.transpose(1, 2)).transpose(1, 2) \
            + F.layer_norm(x * 3, (8,), eps=1e-3)


class Attention(nn.Module):
    def forward(self, x):                                           # heads = channels
        q, k, v = x, x.flip(-1), x * 0.5
        return F.scaled_dot_product_attention(q, k, v) + (q @ k.transpose(-2, -1)) @ v \
            + F.scaled_dot_product_attention(q, k, v, scale=0.3)


class Slices(nn.Module):
    def forward(self, x):
        a, b = x.chunk(2, dim=1)
        c, d, e = torch.split(x, [1, 2, 3], dim=1)
        return a * b.sum(1, keepdim=True) + x[:, 1:2] * x[:, -1].unsqueeze(1) \
            + torch.cat([c * d[:, :1], e[:, 1:2]], 1).sum(1, keepdim=True) + x[:, 2:5, 0, None]


class Expands(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(6))
        self.token = nn.Parameter(torch.randn(1, 6, 1, 8))

    def forward(self, x):
        scale = self.weight[None, :, None, None].expand_as(x)
        token = self.token.expand(x.shape[0], -1, -1, -1)          # to its own shape
        return scale * x + torch.cat([token, x], 2)[:, :, 1:] - x.expand(1, 6, x.shape[2], 8)


class PaddedAvgPool(nn.Module):
    def forward(self, x):
        return F.avg_pool2d(x, 3, 1, 1) + F.avg_pool2d(x, (3, 5), 1, (1, 2)) \
            + F.avg_pool2d(x, 3, 1, 1, count_include_pad=False) + torch.cat([x], 1)


class Nearest(nn.Module):
    def forward(self, x):
        return F.interpolate(x, scale_factor=2, mode="nearest")[..., ::2, ::2] \
            + F.interpolate(x, size=(x.shape[2] * 3, x.shape[3]), mode="nearest")[:, :, 1::3] \
            + F.interpolate(x, scale_factor=1.5, mode="nearest")[..., :x.shape[2], :x.shape[3]]


CASES = [
    (Pools(), "pool-defaults", "max_pool2d"),
    (Adaptive(), "adaptive-avg-pool-to-fixed", None),
    (Norms(), "group-norm-explicit", "group_norm"),
    (Powers(), "small-powers-as-products", None),
    (NoOps(), "drop-no-ops", "dropout"),
    (Grid(), "fold-input-free-subgraphs", "arange"),
    (Views(), "static-view-shapes", "flatten"),
    (Reductions(), "reductions-as-global-pool", "sum"),
    (LayerNorms(), "layer-norm-explicit", "layer_norm"),
    (Attention(), "attention-explicit", "scaled_dot_product"),
    (Attention(), "matmul-as-bmm", "matmul"),
    (Slices(), "select-split-as-slices", "split"),
    (Expands(), "expand-as-broadcast", "expand"),
    (PaddedAvgPool(), "avg-pool-padding-explicit", None),
    (Nearest(), "nearest-upsample-as-cat", None),
]


def _targets(gm) -> list[str]:
    return [str(n.target) for n in gm.graph.nodes if n.op == "call_function"]


@pytest.mark.parametrize("module, name, gone", CASES, ids=[c[1] for c in CASES])
def test_each_pass_rewrites_and_keeps_the_numbers(module, name, gone):
    x = torch.randn(1, 6, 8, 8)
    gm = torch.export.export(module.eval(), (x,)).module()
    the_pass = next(p for p in PASSES if p.name == name)
    assert the_pass.rewrite(gm) >= 1
    gm.graph.lint()
    gm.recompile()
    with torch.no_grad():
        torch.testing.assert_close(gm(x), module(x), rtol=1e-5, atol=1e-5)
    if name == "pool-defaults":
        pools = [n for n in gm.graph.nodes if "pool2d" in str(n.target)]
        assert all(len(n.args) >= 3 and n.args[2] for n in pools)
    elif gone:
        assert not [t for t in _targets(gm) if gone in t], _targets(gm)


def _means(gm) -> list:
    return [n for n in gm.graph.nodes if n.target == torch.ops.aten.mean.dim]


def _rewritten(module, name: str, x):
    gm = torch.export.export(module.eval(), (x,)).module()
    assert next(p for p in PASSES if p.name == name).rewrite(gm) >= 1
    gm.graph.lint()
    gm.recompile()
    return gm


@pytest.mark.parametrize("shape", [(1, 6, 8, 8), (2, 6, 5, 7), (3, 6, 1, 9)])
def test_reductions_become_the_4d_keepdim_mean_xnnpack_takes(shape):
    x = torch.randn(*shape)
    gm = _rewritten(Reductions(), "reductions-as-global-pool", x)
    with torch.no_grad():
        torch.testing.assert_close(gm(x), Reductions()(x), rtol=1e-5, atol=1e-5)
    assert _means(gm) and not [t for t in _targets(gm) if "sum" in t]
    ShapeProp(gm).propagate(x)
    for node in _means(gm):
        assert len(node.args[0].meta["tensor_meta"].shape) == 4 and node.args[2] is True
        assert sorted(d % 4 for d in node.args[1]) == [2, 3]


@pytest.mark.parametrize("shape", [(1, 6, 8, 8), (2, 6, 3, 8), (1, 6, 1, 8)])
def test_layer_norm_becomes_pooled_means_and_rsqrt(shape):
    x = torch.randn(*shape) * 4 + 1
    module = LayerNorms().eval()
    gm = _rewritten(module, "layer-norm-explicit", x)
    with torch.no_grad():
        torch.testing.assert_close(gm(x), module(x), rtol=1e-5, atol=1e-5)
    assert "aten.rsqrt.default" in _targets(gm) and len(_means(gm)) == 6
    assert all(n.args[1:] == ([2, 3], True) for n in _means(gm))


@pytest.mark.parametrize("shape", [(1, 6, 8, 8), (2, 3, 5, 7)])
def test_attention_and_matmul_become_bmm(shape):
    x = torch.randn(*shape)
    gm = _rewritten(Attention(), "attention-explicit", x)
    assert next(p for p in PASSES if p.name == "matmul-as-bmm").rewrite(gm) >= 1
    gm.graph.lint()
    gm.recompile()
    with torch.no_grad():
        torch.testing.assert_close(gm(x), Attention()(x), rtol=1e-5, atol=1e-5)
    assert not [t for t in _targets(gm) if "matmul" in t or "attention" in t]
    assert _targets(gm).count("aten.bmm.default") == 6


def test_masked_or_causal_attention_is_left_alone():
    class Causal(nn.Module):
        def forward(self, x):
            return F.scaled_dot_product_attention(x, x, x, is_causal=True)

    x = torch.randn(1, 2, 5, 4)
    gm = torch.export.export(Causal(), (x,)).module()
    assert next(p for p in PASSES if p.name == "attention-explicit").rewrite(gm) == 0


def test_select_and_split_become_slices_on_odd_shapes():
    x = torch.randn(2, 6, 5, 3)
    gm = _rewritten(Slices(), "select-split-as-slices", x)
    with torch.no_grad():
        torch.testing.assert_close(gm(x), Slices()(x), rtol=1e-6, atol=1e-6)
    assert not [t for t in _targets(gm) if "select" in t or "split" in t or "chunk" in t]


def test_a_real_broadcast_expand_stays():
    class Tile(nn.Module):
        def forward(self, x):
            return torch.cat([x[:, :1].expand(-1, 3, -1, -1), x], 1)

    x = torch.randn(1, 6, 4, 4)
    gm = torch.export.export(Tile(), (x,)).module()
    assert next(p for p in PASSES if p.name == "expand-as-broadcast").rewrite(gm) == 0


def test_padded_avg_pool_pads_explicitly_and_counts_no_padding():
    x = torch.randn(1, 6, 7, 9)
    gm = _rewritten(PaddedAvgPool(), "avg-pool-padding-explicit", x)
    with torch.no_grad():
        torch.testing.assert_close(gm(x), PaddedAvgPool()(x), rtol=1e-6, atol=1e-6)
    pools = [n for n in gm.graph.nodes if n.target == torch.ops.aten.avg_pool2d.default]
    padded = [n for n in pools if any(n.args[3])]
    assert len(padded) == 1 and padded[0].args[5] is False         # count_include_pad=False
    assert _targets(gm).count("aten.constant_pad_nd.default") == 2


@pytest.mark.parametrize("shape", [(1, 6, 8, 8), (2, 3, 5, 7)])
def test_integer_nearest_upsampling_becomes_cats_and_a_fractional_one_stays(shape):
    x = torch.randn(*shape)
    gm = _rewritten(Nearest(), "nearest-upsample-as-cat", x)
    with torch.no_grad():
        torch.testing.assert_close(gm(x), Nearest()(x), rtol=0, atol=0)
    assert _targets(gm).count("aten.upsample_nearest2d.vec") == 1          # the x1.5 one
    cats = [n for n in gm.graph.nodes if n.target == torch.ops.aten.cat.default]
    assert sorted(len(n.args[0]) for n in cats) == [2, 2, 3]


def test_delegation_passes_run_for_executorch_xnnpack_only():
    x = torch.randn(1, 6, 8, 8)
    _, xnnpack = canonicalize(LayerNorms().eval(), (x,), "executorch-xnnpack")
    _, litert = canonicalize(LayerNorms().eval(), (x,), "litert")
    assert "layer-norm-explicit" in xnnpack and "layer-norm-explicit" not in litert


def test_reductions_stay_for_static_int8_where_xnnpack_cannot_build_them():
    x = torch.randn(1, 6, 8, 8)
    _, fp32 = canonicalize(Reductions().eval(), (x,), "executorch-xnnpack", "fp32")
    _, int8 = canonicalize(Reductions().eval(), (x,), "executorch-xnnpack", "int8-static")
    assert "reductions-as-global-pool" in fp32 and "reductions-as-global-pool" not in int8


def test_the_rewritten_graph_exports_again_with_the_rewrite_in_place():
    x = torch.randn(1, 6, 8, 8)
    module, applied = canonicalize(Pools().eval(), (x,), "executorch-xnnpack")
    assert "pool-defaults" in applied
    ep = torch.export.export(module.eval(), (x,))
    pools = [n for n in ep.graph.nodes if n.target == torch.ops.aten.max_pool2d.default]
    assert pools and all(len(n.args) >= 3 and list(n.args[2]) for n in pools)


def test_format_scoped_passes_run_only_for_their_formats():
    x = torch.randn(1, 6, 8, 8)
    _, litert = canonicalize(Norms().eval(), (x,), "litert")
    _, coreml = canonicalize(Norms().eval(), (x,), "coreml")
    assert "group-norm-explicit" in litert and "group-norm-explicit" not in coreml


def test_a_model_no_pass_touches_comes_back_as_it_was():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()).eval()
    same, applied = canonicalize(model, (torch.randn(1, 3, 8, 8),), "coreml")
    assert same is model and applied == []


def test_a_pass_that_changed_the_numbers_is_caught(monkeypatch):
    def breaks(gm):
        for node in gm.graph.nodes:
            if node.target == torch.ops.aten.relu.default:
                node.target = torch.ops.aten.neg.default
                return 1
        return 0

    monkeypatch.setattr(canonical, "PASSES", (canonical.Pass("breaks", "test", breaks),))
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()).eval()
    with pytest.raises(canonical.PocketError, match="changed the model's outputs"):
        canonicalize(model, (torch.randn(1, 3, 8, 8),), "coreml")


def test_every_pass_has_a_name_and_summary_and_known_formats():
    from sdk_builder.formats import FORMATS

    names = [p.name for p in PASSES]
    assert len(set(names)) == len(names)
    known = {f.name for f in FORMATS}
    for p in PASSES:
        assert p.summary and (p.formats is None or set(p.formats) <= known), p.name


# ---------------------------------------------------------------- diagnosis
class DataDependent(nn.Module):
    def forward(self, x):
        if x.sum() > 0:
            return x * 2
        return x


def test_data_dependent_control_flow_names_the_users_line():
    try:
        torch.export.export(DataDependent(), (torch.randn(1, 3),))
    except Exception as exc:  # noqa: BLE001
        message = capture_failure(exc)
    assert "data-dependent control flow" in message
    assert "test_canonical.py" in message and "if x.sum() > 0" in message


def test_a_failing_node_is_named_with_its_source_line_and_advice():
    x = torch.randn(1, 6, 8, 8)
    gm = torch.export.export(Powers(), (x,)).module()
    pow_node = next(n for n in gm.graph.nodes if "pow" in str(n.target))
    text = export_failure(RuntimeError(f"failed to legalize operation 'tfl.pow' at %{pow_node.name}"), gm)
    assert "op aten::pow" in text and "test_canonical.py" in text and "x * x" in text


def test_user_line_skips_torch_and_pocket_frames():
    trace = ('File "/home/u/my_net.py", line 12, in forward\n    y = x ** 2\n'
             'File "/venv/lib/python3.11/site-packages/torch/nn/modules/module.py", line 1, in _call\n'
             '    return f()\n')
    assert user_line_of(trace) == "my_net.py:12: y = x ** 2"
    assert "make it float" in advice_for('"histogram_cpu" not implemented for \'Long\'')

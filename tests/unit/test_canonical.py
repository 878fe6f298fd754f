"""Each canonicalizing pass rewrites what it is for, and the rewritten graph computes what
the eager model computes; diagnosis names the user's line and a way out."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sdk_builder import canonical
from sdk_builder.canonical import PASSES, canonicalize
from sdk_builder.diagnose import advice_for, capture_failure, export_failure, user_line_of

pytestmark = pytest.mark.unit
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


CASES = [
    (Pools(), "pool-defaults", "max_pool2d"),
    (Adaptive(), "adaptive-avg-pool-to-fixed", None),
    (Norms(), "group-norm-explicit", "group_norm"),
    (Powers(), "small-powers-as-products", None),
    (NoOps(), "drop-no-ops", "dropout"),
    (Grid(), "fold-input-free-subgraphs", "arange"),
    (Views(), "static-view-shapes", "flatten"),
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

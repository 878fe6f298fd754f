"""Graph passes run on a captured model before PT2E annotation keep its maths and make
quantizers see one partition per module call."""
import pytest
import torch
from torch import nn

from sdk_builder.quantize.pt2e import decompose_hardswish, functional_inplace_ops, separate_module_calls


class ReadsAfterMutation(nn.Module):
    """Reads `y` again after relu_ and add_ mutated it: the rewrite must re-point readers."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        before = y * 2          # read before the mutation: must keep the pre-mutation value
        z = self.act(y)
        z.add_(1.0)
        return before + y + z   # y is relu(conv)+1 here


def test_rewrite_leaves_no_inplace_op_and_the_same_outputs():
    torch.manual_seed(0)
    model = ReadsAfterMutation().eval()
    x = torch.randn(2, 3, 8, 8)
    gm = torch.export.export(model, (x,)).module()
    names = [n.target.overloadpacket.__name__ for n in gm.graph.nodes
             if isinstance(n.target, torch._ops.OpOverload)]
    assert "relu_" in names and "add_" in names
    assert functional_inplace_ops(gm) == 2
    names = [n.target.overloadpacket.__name__ for n in gm.graph.nodes
             if isinstance(n.target, torch._ops.OpOverload)]
    assert not [n for n in names if n.endswith("_") and not n.startswith("_")]
    with torch.no_grad():
        torch.testing.assert_close(gm(x), model(x))


@pytest.mark.parametrize("inplace", [False, True])
def test_graph_without_inplace_ops_is_untouched(inplace):
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU(inplace=inplace)).eval()
    gm = torch.export.export(model, (torch.randn(1, 3, 4, 4),)).module()
    assert functional_inplace_ops(gm) == (1 if inplace else 0)


class PoolsTwice(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.conv(self.pool(x)))


def test_a_module_called_twice_becomes_two_source_partitions():
    from torch.fx.passes.utils.source_matcher_utils import get_source_partitions

    x = torch.randn(1, 3, 16, 16)
    gm = torch.export.export(PoolsTwice().eval(), (x,)).module()

    def pool_partitions() -> list:
        return get_source_partitions(gm.graph, [nn.MaxPool2d]).get(nn.MaxPool2d, [])

    assert len(pool_partitions()) == 1          # the grouping that trips quantizers
    assert separate_module_calls(gm) >= 1
    partitions = pool_partitions()
    assert len(partitions) == 2 and all(len(p.output_nodes) == 1 for p in partitions)
    assert separate_module_calls(gm) == 0       # idempotent


class HardswishThreeWays(nn.Module):
    """nn.Hardswish (in place), F.hardswish on a 4-D map and on a 2-D tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.act = nn.Hardswish(inplace=True)
        self.fc = nn.Linear(4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = nn.functional.hardswish(self.act(self.conv(x)) * 3)
        return nn.functional.hardswish(self.fc(y.mean((2, 3))))


def test_hardswish_becomes_add_clamp_mul_with_the_same_outputs():
    torch.manual_seed(0)
    model = HardswishThreeWays().eval()
    x = torch.randn(2, 3, 8, 8) * 4          # covers both clamp edges (x < -3, x > 3)
    gm = torch.export.export(model, (x,)).module()
    functional_inplace_ops(gm)
    assert decompose_hardswish(gm) == 3
    targets = {str(n.target) for n in gm.graph.nodes if n.op == "call_function"}
    assert not [t for t in targets if "hardswish" in t]
    ranks = sorted(getattr(gm, n.target).dim() for n in gm.graph.nodes if n.op == "get_attr"
                   and "hardswish" in n.target)
    assert ranks == [2, 2, 4, 4, 4, 4]       # constants with the rank of what they scale
    with torch.no_grad():
        torch.testing.assert_close(gm(x), model(x))

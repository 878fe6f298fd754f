"""Say why a user's model did not capture or convert: the failing op, the line of the
user's file it came from, and what to change.

Toolchain errors name an op or a graph node in their own words ("While executing
%sub_1", "node max_pool2d (max_pool2d)", "failed to legalize operation 'tfl.pow'",
"aten::sort"). `export_failure` looks for those names in the exception chain, finds the
node in the captured graph, and reads the user's line from the node's stack trace
(torch.export records one per node). An error raised while an fx graph runs (a PT2E
observer during calibration, '"histogram_cpu" not implemented for 'Long'') names no node;
then the traceback says which line of the graph's generated forward() raised, and that
line names the node (`running_node`). `ADVICE` maps what a toolchain said to what a user
can do; it is the one list of known ways out.
"""
from __future__ import annotations

import linecache
import re
import traceback
from pathlib import Path
from typing import Any

from runtime_py.errors import one_line

_ROOT = Path(__file__).resolve().parents[1]
_OWN_DIRS = ("site-packages", "dist-packages", "<frozen", "/lib/python",
             *(str(_ROOT / package) + "/" for package in ("sdk_builder", "runtime_py", "models")))

# (pattern in the toolchain's message, advice): first match wins
ADVICE: tuple[tuple[str, str], ...] = (
    (r"tfl\.pow|aten\.pow|aten::pow", "write small powers as products (x * x) or use torch.sqrt"),
    (r"not implemented for '(Long|Int|Short|Char|Byte|Bool)'|observer.*(Long|int64)",
     "an integer tensor reaches int8 calibration or a float-only kernel: make it float where "
     "it meets float maths (2.0 rather than 2, .float() on index or arange tensors)"),
    (r"[Dd]ata-dependent|GuardOnDataDependent|data dependent",
     "the result depends on tensor values (data-dependent shape or branch): use torch.where "
     "or fixed-size ops (topk with a constant k) instead of nonzero / boolean indexing / if"),
    (r"broadcast", "make the broadcast explicit: reshape both operands to the same rank "
                   "(e.g. weight.view(1, C, 1, 1)) or use channels-first LayerNorm/GroupNorm"),
    (r"rank.*(5|6)|more than 5 dim|exceeds.*rank", "keep tensors at rank <= 5 (Core ML's "
                                                   "limit): merge dimensions before permuting"),
    (r"not (implemented|supported)|unsupported|no kernel|failed to legalize",
     "replace the op with a common equivalent (conv/matmul/elementwise) or build this "
     "format with another recipe"),
)
DEFAULT_ADVICE = "run with --debug for the converter's full trace; the other formats are unaffected"


def advice_for(message: str) -> str:
    for pattern, advice in ADVICE:
        if re.search(pattern, message):
            return advice
    return DEFAULT_ADVICE


def user_line_of(stack_trace: str | None) -> str | None:
    """'file.py:12: code' of the innermost frame outside torch, the toolchains and Pocket."""
    if not stack_trace:
        return None
    frames = re.findall(r'File "([^"]+)", line (\d+), in \S+\n\s*(.*)', stack_trace)
    for path, line, code in reversed(frames):
        if not any(own in path.replace("\\", "/") for own in _OWN_DIRS):
            return f"{Path(path).name}:{line}: {code.strip()}"
    return None


def _frames_of(exc: BaseException) -> str | None:
    """The user's innermost frame of an exception's traceback (for capture errors)."""
    summary = traceback.extract_tb(exc.__traceback__)
    for frame in reversed(summary):
        path = frame.filename.replace("\\", "/")
        if not any(own in path for own in _OWN_DIRS):
            return f"{Path(frame.filename).name}:{frame.lineno}: {(frame.line or '').strip()}"
    text = "".join(traceback.format_exception(exc))
    return user_line_of(text)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and exc not in seen and len(seen) < 8:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def capture_failure(exc: BaseException) -> str:
    """One line for a torch.export failure of the user's model."""
    text = " ".join(str(e) for e in _chain(exc))
    where = _frames_of(exc) or user_line_of(text)
    at = f" at {where}" if where else ""
    if re.search(r"[Dd]ata-dependent|GuardOnDataDependent|data dependent|Could not guard", text):
        return (f"torch.export cannot capture the model: its forward branches on tensor values "
                f"(data-dependent control flow){at}; use torch.where / torch.cond, or take the "
                "decision outside forward")
    return (f"torch.export cannot capture the model{at}: {type(exc).__name__}: "
            f"{one_line(exc, 240)}; {advice_for(text)}")


def _node_names(message: str) -> list[str]:
    names = re.findall(r"%([A-Za-z_][\w]*)", message)
    names += re.findall(r"\bnode ([A-Za-z_][\w]*)", message)
    return names


def _op_words(message: str) -> list[str]:
    words = re.findall(r"aten::(\w+)|aten\.(\w+)|tfl\.(\w+)|operation '(\w+)'", message)
    return [w for group in words for w in group if w]


def failing_node(graph_module: Any, message: str) -> Any | None:
    """The captured graph's node a toolchain message points at (by name, else by op)."""
    nodes = [n for n in graph_module.graph.nodes if n.op == "call_function"]
    by_name = {n.name: n for n in nodes}
    for name in _node_names(message):
        if name in by_name:
            return by_name[name]
    for word in _op_words(message):
        for n in nodes:
            target = str(n.target)
            if f"aten.{word}." in target or target.endswith(f".{word}") or f".{word}_" in target:
                return n
    return None


def running_node(exc: BaseException) -> tuple[Any, Any, dict] | None:
    """(graph module, node, the forward's local values) of the innermost line of an fx
    graph's generated forward() in `exc`'s traceback, or None if no graph was running."""
    for error in _chain(exc):
        found, tb = None, error.__traceback__
        while tb is not None:
            found = _graph_line(tb) or found
            tb = tb.tb_next
        if found:
            return found
    return None


def _graph_line(tb: Any) -> tuple[Any, Any, dict] | None:
    """The graph node a traceback entry's line assigns, if the entry is a GraphModule's
    generated forward() (its code is the class's forward; each node is 'name = ...')."""
    frame = tb.tb_frame
    owner = frame.f_locals.get("self")
    graph = getattr(owner, "graph", None)
    forward = getattr(type(owner), "forward", None)
    if graph is None or getattr(forward, "__code__", None) is not frame.f_code:
        return None
    line = linecache.getline(frame.f_code.co_filename, tb.tb_lineno, frame.f_globals)
    assigned = re.match(r"\s*(\w+)\s*=", line)
    node = next((n for n in graph.nodes if assigned and n.name == assigned.group(1)), None)
    return (owner, node, dict(frame.f_locals)) if node is not None else None


def _observed(graph_module: Any, node: Any) -> tuple[Any, Any] | None:
    """(value node, the op reading it) when `node` calls an observer or fake-quantize."""
    if node.op != "call_module" or not node.args:
        return None
    try:
        module = graph_module.get_submodule(node.target)
    except AttributeError:
        return None
    if not hasattr(module, "calculate_qparams"):
        return None
    readers = [u for u in node.users if u.op == "call_function"]
    return node.args[0], (readers[0] if readers else None)


def _value_text(node: Any, values: dict) -> str:
    """'int64 _tensor_constant_0 = 2': a node's value as the failing run saw it."""
    value = values.get(node.name)
    dtype, shown = getattr(value, "dtype", None), ""
    if dtype is not None and getattr(value, "numel", lambda: 0)() == 1:
        shown = f" = {value.item()}"
    kind = f"{str(dtype).replace('torch.', '')} " if dtype is not None else ""
    return f"{kind}{node.name}{shown}"


def _op_part(node: Any) -> str:
    op = str(node.target).replace("aten.", "aten::").split(".default")[0]
    where = user_line_of(node.meta.get("stack_trace"))
    return f"op {op}" + (f" from {where}" if where else "")


def _running_parts(exc: BaseException) -> list[str]:
    """What the running graph says about `exc`: the op and, for an observer, its value."""
    found = running_node(exc)
    if found is None:
        return []
    graph_module, node, values = found
    observed = _observed(graph_module, node)
    if observed is None:
        return [_op_part(node)] if node.op == "call_function" else []
    value, reader = observed
    if value.op == "call_function":          # an output observer: the op made the value
        return [_op_part(value), f"calibration observer on its output {_value_text(value, values)}"]
    parts = [_op_part(reader)] if reader is not None else []
    return parts + [f"calibration observer on its operand {_value_text(value, values)}"]


def export_failure(exc: BaseException, graph_module: Any | None) -> str:
    """' (op OP from FILE:LINE: CODE; ADVICE)' to append to a format's failure line."""
    text = " ".join(str(e) for e in _chain(exc))
    node = failing_node(graph_module, text) if graph_module is not None else None
    parts = [_op_part(node)] if node is not None else _running_parts(exc)
    parts.append(advice_for(text))
    return f" ({'; '.join(parts)})"

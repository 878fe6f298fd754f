"""The zoo as rows for `pocket list` and the README, read from the registry and the cards
(numbers are written once, in models/cards/<name>.json, by models.card)."""
from __future__ import annotations

from models.card import CARDS_DIR, read_card
from models.card_md import fmt_metric
from models.registry import items


def zoo_rows() -> list[dict]:
    """One row per registered model: task, input, params, MACs and headline metric."""
    rows = []
    for name, spec in items():
        card = read_card(name) or {}
        metric = card.get("metric")
        value = card["committed"]["heldout"][metric] if metric else None
        rows.append({"name": name, "task": spec.task, "input": list(spec.input.shape),
                     "params": card.get("params"), "macs": card.get("macs"),
                     "metric": metric, "value": value,
                     "headline": f"{metric} {fmt_metric(metric, value)}" if metric else "no card yet",
                     "paper": spec.card.paper if spec.card else "",
                     "card": f"models/cards/{name}.md" if (CARDS_DIR / f"{name}.md").is_file() else None,
                     "description": spec.description})
    return rows


def millions(n: int | None) -> str:
    return "–" if n is None else f"{n / 1e6:.2f} M"


def zoo_markdown_table() -> str:
    """The README's zoo table."""
    lines = ["| model | task | input | params | MACs | held-out | paper | card |",
             "|---|---|---|---:|---:|---|---|---|"]
    for r in zoo_rows():
        card = f"[{r['card']}]({r['card']})" if r["card"] else "–"
        lines.append(f"| `{r['name']}` | {r['task']} | {'×'.join(map(str, r['input']))} | "
                     f"{millions(r['params'])} | {millions(r['macs'])} | {r['headline']} | "
                     f"{r['paper']} | {card} |")
    return "\n".join(lines)

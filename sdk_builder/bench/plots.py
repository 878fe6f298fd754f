"""PNG charts of a bench result (matplotlib, Agg): latency bars and size/latency/accuracy."""
from __future__ import annotations

from pathlib import Path

_REF_COLOR, _ART_COLOR = "#9e9e9e", "#1f77b4"


def write_plots(result: dict, stem: Path) -> list[Path]:
    """<stem>.latency.png and <stem>.tradeoff.png (the latter only with accuracies)."""
    import matplotlib

    matplotlib.use("Agg")
    paths = [_latency(result, Path(f"{stem}.latency.png"))]
    trade = _tradeoff(result, Path(f"{stem}.tradeoff.png"))
    if trade is not None:
        paths.append(trade)
    return paths


def _latency(result: dict, path: Path) -> Path:
    import matplotlib.pyplot as plt

    runs = result["runs"]
    names = list(dict.fromkeys(r["name"] for run in runs for r in run["rows"]))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(names) + 2), 4.2), dpi=110)
    width = 0.8 / len(runs)
    for k, run in enumerate(runs):
        rows = {r["name"]: r for r in run["rows"]}
        xs, ys, errs, colors = [], [], [], []
        for i, n in enumerate(names):
            if n not in rows:
                continue
            lat = rows[n]["latency"]
            xs.append(i + (k - (len(runs) - 1) / 2) * width)
            ys.append(lat["trimmed_mean_ms"])
            errs.append([[lat["trimmed_mean_ms"] - lat["p50_ms"] if lat["p50_ms"] < lat["trimmed_mean_ms"] else 0],
                         [max(0.0, lat["p90_ms"] - lat["trimmed_mean_ms"])]])
            colors.append(_REF_COLOR if rows[n]["kind"] == "reference" else _ART_COLOR)
        bars = ax.bar(xs, ys, width=width * 0.92, color=colors, alpha=1.0 - 0.35 * k,
                      label=f"{run['threads']} thread(s)")
        ax.errorbar(xs, ys, yerr=[[e[0][0] for e in errs], [e[1][0] for e in errs]], fmt="none",
                    ecolor="black", elinewidth=0.8, capsize=2)
        for b, y, e in zip(bars, ys, errs):       # above the p90 whisker, not under it
            ax.annotate(f"{y:.2f}", (b.get_x() + b.get_width() / 2, y + e[1][0]), ha="center",
                        va="bottom", fontsize=7, xytext=(0, 3), textcoords="offset points")
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("latency, ms (trimmed mean; whisker to p90)")
    lows = [r["latency"]["trimmed_mean_ms"] for run in runs for r in run["rows"]]
    if max(lows) > 20 * min(lows):
        ax.set_yscale("log")
        ax.set_ylabel("latency, ms, log scale (trimmed mean; whisker to p90)")
    dev = result["deviceInfo"]
    ax.set_title(f"{result['model']['name']}: artifacts vs PyTorch eager and ONNX Runtime\n"
                 f"{dev['cpu']}, interleaved runs", fontsize=9)
    if len(runs) > 1:
        ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _tradeoff(result: dict, path: Path) -> Path | None:
    """Three panels sharing the artifact axis: size (MB), latency (ms), accuracy (%)."""
    import matplotlib.pyplot as plt

    run = result["runs"][0]
    rows = [r for r in run["rows"] if r["kind"] == "artifact" and r.get("accuracy") is not None]
    if not rows:
        return None
    refs = [r for r in run["rows"] if r["kind"] == "reference"]
    names = [r["name"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(10, 0.5 * len(rows) + 1.8), dpi=110, sharey=True)
    ys = range(len(rows))
    panels = (("size, MB", [r["size_bytes"] / 1e6 for r in rows], "{:.2f}"),
              (f"latency, ms ({run['threads']} thread(s))",
               [r["latency"]["trimmed_mean_ms"] for r in rows], "{:.3f}"),
              (f"{result['model'].get('metric') or 'task metric'}, % (evaluation split)",
               [100 * r["accuracy"] for r in rows], "{:.1f}"))
    for ax, (label, values, fmt) in zip(axes, panels):
        ax.barh(list(ys), values, color=_ART_COLOR, height=0.6)
        for y, v in zip(ys, values):
            ax.annotate(fmt.format(v), (v, y), va="center", ha="left", fontsize=7,
                        xytext=(2, 0), textcoords="offset points")
        ax.set_xlabel(label, fontsize=8)
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(labelsize=8)
        ax.margins(x=0.25)
        ax.set_ylim(len(rows) - 0.5, -0.7)
    top = max(panels[1][1]) * 1.6
    for ref in refs:
        lat = ref["latency"]["trimmed_mean_ms"]
        if lat <= top:
            axes[1].axvline(lat, color=_REF_COLOR, ls="--", lw=1)
            axes[1].text(lat, -0.45, ref["name"] + " ", fontsize=7, ha="right", va="bottom", color="#555555")
    if refs:
        axes[1].set_xlabel(panels[1][0] + "\n" + ", ".join(
            f"{r['name']} {r['latency']['trimmed_mean_ms']:.2f} ms" for r in refs), fontsize=8)
    accs = panels[2][1]
    axes[2].set_xlim(max(0.0, min(accs) - 2.0), min(100.0, max(accs) + 1.0))
    axes[1].set_xlim(0, max(top, max(panels[1][1]) * 1.3))
    axes[0].set_yticks(list(ys), names)
    fig.suptitle(f"{result['model']['name']}: size / latency / {result['model'].get('metric') or 'task metric'} "
                 "per artifact", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path

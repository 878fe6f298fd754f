"""Pictures of dense answers: the input and the result side by side (PIL only).

    picture = render(image, result, manifest["postprocess"], labels)   # -> PIL.Image
    picture.save("seg.png")

Panels keep the image's aspect ratio; a photo whose long side exceeds MAX_PANEL pixels is
shown scaled down (the result's arrays stay at the image's full size).
"""
from __future__ import annotations

import numpy as np

from runtime_py.dense import default_palette
from runtime_py.errors import PocketError

MAX_PANEL = 1024
GAP = 8
ROUTE_COLOURS = ((25, 25, 25), (140, 140, 140), (255, 255, 255))   # route 0, 1, 2: brighter = more compute
# A few anchor colours per map, linearly interpolated (perceptually ordered, dark = low).
COLORMAPS = {
    "magma": ((0, 0, 4), (81, 18, 124), (183, 55, 121), (252, 137, 97), (252, 253, 191)),
    "gray": ((0, 0, 0), (255, 255, 255)),
    "turbo": ((48, 18, 59), (40, 150, 230), (90, 240, 110), (250, 190, 40), (180, 20, 10)),
}


def colormap(values: np.ndarray, name: str = "magma") -> np.ndarray:
    """A float map -> HxWx3 uint8, scaled from its own min..max."""
    if name not in COLORMAPS:
        raise PocketError(f"unknown colormap '{name}'; choose one of {', '.join(COLORMAPS)}")
    anchors = np.asarray(COLORMAPS[name], np.float64)
    lo, hi = float(np.min(values)), float(np.max(values))
    t = (np.asarray(values, np.float64) - lo) / (hi - lo) if hi > lo else np.zeros_like(values, np.float64)
    grid = np.linspace(0.0, 1.0, len(anchors))
    rgb = [np.interp(t, grid, anchors[:, c]) for c in range(3)]
    return np.rint(np.stack(rgb, -1)).astype(np.uint8)


def _fit(image, width: int, height: int):
    from PIL import Image

    scale = min(1.0, MAX_PANEL / max(width, height))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return image if image.size == size else image.resize(size, Image.BILINEAR)


def _row(panels: list, legend: list[tuple[tuple[int, int, int], str]]):
    """Panels left to right with gaps, a legend line of colour swatches underneath."""
    from PIL import Image, ImageDraw

    width = sum(p.width for p in panels) + GAP * (len(panels) - 1)
    height = max(p.height for p in panels)
    line = 18
    rows = max(1, -(-len(legend) * 150 // max(width, 150))) if legend else 0
    canvas = Image.new("RGB", (width, height + (rows * line + GAP if legend else 0)), (255, 255, 255))
    x = 0
    for panel in panels:
        canvas.paste(panel, (x, 0))
        x += panel.width + GAP
    draw = ImageDraw.Draw(canvas)
    per_row = max(1, width // 150)
    for i, (colour, text) in enumerate(legend):
        lx, ly = (i % per_row) * 150 + 2, height + GAP // 2 + (i // per_row) * line
        draw.rectangle((lx, ly + 3, lx + 11, ly + 14), fill=tuple(colour), outline=(0, 0, 0))
        draw.text((lx + 15, ly + 2), text, fill=(0, 0, 0))
    return canvas


def _segment(image, result: dict, params: dict, labels: list[str] | None):
    from PIL import Image

    class_map = result["class_map"]
    classes = int(class_map.max()) + 1
    palette = np.asarray(params.get("palette") or default_palette(max(classes, 2)), np.uint8)
    if len(palette) < classes:
        raise PocketError(f"the palette has {len(palette)} colours for {classes} classes; rebuild the bundle")
    alpha = float(params.get("alpha", 0.5))
    colours = palette[class_map]
    base = np.asarray(image.convert("RGB"), np.float32)
    overlay = np.rint((1 - alpha) * base + alpha * colours).astype(np.uint8)
    panels = [image.convert("RGB"), Image.fromarray(overlay)]
    legend = [(tuple(palette[c["index"]]), f"{c['label']} {_percent(c['area'])}") for c in result["classes"]]
    if "patch_routes" in result:
        panels.append(_routes_panel(base, result["patch_routes"]))
        legend += [(colour, name) for colour, name in zip(ROUTE_COLOURS, result["route_names"])]
    return panels, legend


def _percent(share: float) -> str:
    return "<1%" if 0 < share < 0.005 else f"{100 * share:.0f}%"


def _routes_panel(base: np.ndarray, routes: np.ndarray):
    """The image tinted per patch by the encoder its patch was routed to."""
    from PIL import Image

    tint = np.asarray(ROUTE_COLOURS, np.uint8)[np.clip(routes, 0, len(ROUTE_COLOURS) - 1)]
    height, width = base.shape[:2]
    grid = np.asarray(Image.fromarray(tint).resize((width, height), Image.NEAREST), np.float32)
    return Image.fromarray(np.rint(0.45 * base + 0.55 * grid).astype(np.uint8))


def _heatmap(image, result: dict, params: dict, labels: list[str] | None):
    from PIL import Image

    name = params.get("colormap", "magma")
    return [image.convert("RGB"), Image.fromarray(colormap(result["map"], name))], \
        [((0, 0, 0), f"{name}: low {result['min']:.3g}"), ((255, 255, 255), f"high {result['max']:.3g}")]


DRAWERS = {"segment": _segment, "heatmap": _heatmap}


def render(image, result: dict, params: dict, labels: list[str] | None = None):
    """The input image (PIL, upright) and its dense result side by side, with a legend."""
    kind = params.get("kind")
    if kind not in DRAWERS:
        raise PocketError(f"no picture for postprocess kind '{kind}': --out draws dense results "
                          f"({', '.join(DRAWERS)}); use --json for this bundle")
    panels, legend = DRAWERS[kind](image, result, params, labels)
    return _row([_fit(p, image.width, image.height) for p in panels], legend)

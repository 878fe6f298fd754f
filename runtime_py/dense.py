"""Dense answers shared by every per-pixel model: class maps (segmentation) and scalar
maps (depth, saliency), mapped back to the size of the image the user passed.

Mapping back follows the manifest: the image was resized to the model's H x W without
keeping its aspect ratio, so the model's map is resized to the image's own W x H with
`resize_back` — "nearest" for class ids (PIL NEAREST: each output pixel takes the model
pixel its centre falls in), "bilinear" for scalar maps (PIL BILINEAR on float32).
"""
from __future__ import annotations

import numpy as np

from runtime_py.errors import PocketError

Size = tuple[int, int]       # (width, height), PIL's order


def default_palette(n: int) -> list[list[int]]:
    """`n` distinct colours (golden-angle hues), for models that ship no palette."""
    import colorsys

    return [[int(255 * c) for c in colorsys.hsv_to_rgb((i * 0.618034) % 1.0, 0.75, 0.95)]
            for i in range(n)]


def _resize(array: np.ndarray, size: Size | None, nearest: bool) -> np.ndarray:
    from PIL import Image

    if size is None or (array.shape[1], array.shape[0]) == tuple(size):
        return array
    if nearest:
        return np.asarray(Image.fromarray(array.astype(np.uint8), "L").resize(size, Image.NEAREST))
    return np.asarray(Image.fromarray(array.astype(np.float32), "F").resize(size, Image.BILINEAR))


def _map_2d(output: np.ndarray, what: str) -> np.ndarray:
    """[1, C, H, W] / [1, H, W] / [H, W] -> [C, H, W] (C = 1 for a scalar map)."""
    arr = np.asarray(output)
    while arr.ndim > 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise PocketError(f"a {what} model must return a [1, C, H, W] map; got shape {list(np.shape(output))}")
    return arr


def segment(params: dict, labels: list[str] | None):
    """Class map (argmax over channels) at the image's size, per-class area shares, and the
    dominant class; optional patch routes (an extra output of entropy-routed models)."""
    routes_spec = params.get("patch_routes")

    def post(outputs: list[np.ndarray], image_size: Size | None = None) -> dict:
        logits = _map_2d(outputs[0], "segmentation")
        if logits.shape[0] > 256:
            raise PocketError(f"segmentation with {logits.shape[0]} classes is not supported (at most 256)")
        class_map = _resize(np.argmax(logits, axis=0).astype(np.uint8), image_size, nearest=True)
        counts = np.bincount(class_map.reshape(-1), minlength=logits.shape[0])
        names = labels if labels and len(labels) >= logits.shape[0] else [str(i) for i in range(len(counts))]
        classes = [{"index": int(i), "label": names[i], "area": float(counts[i] / class_map.size)}
                   for i in np.argsort(-counts, kind="stable") if counts[i]]
        result = {"label": classes[0]["label"], "classes": classes, "class_map": class_map,
                  "size": [int(class_map.shape[1]), int(class_map.shape[0])],
                  "model_size": [int(logits.shape[2]), int(logits.shape[1])]}
        if routes_spec:
            result["patch_routes"] = patch_routes(outputs[routes_spec["output"]], logits.shape[1:],
                                                  routes_spec["patch"])
            result["route_names"] = list(routes_spec.get("names") or
                                         [f"route {i}" for i in range(int(result["patch_routes"].max()) + 1)])
        return result

    return post


def patch_routes(routes: np.ndarray, model_hw: tuple[int, int], patch: int) -> np.ndarray:
    """Routes [1, N] (raster order) -> an int grid [H/patch, W/patch]."""
    rows, cols = model_hw[0] // patch, model_hw[1] // patch
    flat = np.rint(np.asarray(routes).reshape(-1)).astype(np.int64)
    if flat.size != rows * cols:
        raise PocketError(f"routes output has {flat.size} entries, the {rows}x{cols} patch grid needs {rows * cols}")
    return flat.reshape(rows, cols)


def heatmap(params: dict, labels: list[str] | None):
    """A scalar map (depth, saliency) at the image's size, with its range and, given a
    threshold, the share of the image above it."""
    use_sigmoid = bool(params.get("sigmoid", False))
    threshold = params.get("threshold")
    nearest = params.get("resize_back", "bilinear") == "nearest"

    def post(outputs: list[np.ndarray], image_size: Size | None = None) -> dict:
        values = _map_2d(outputs[0], "dense")[0].astype(np.float32)
        if use_sigmoid:
            values = 1.0 / (1.0 + np.exp(-values))
        model_size = [int(values.shape[1]), int(values.shape[0])]
        values = _resize(values, image_size, nearest=nearest)
        result = {"map": values, "min": float(values.min()), "max": float(values.max()),
                  "mean": float(values.mean()), "size": [int(values.shape[1]), int(values.shape[0])],
                  "model_size": model_size}
        if threshold is not None:
            result["above_threshold"] = float(np.mean(values >= float(threshold)))
        return result

    return post


def segment_lines(result: dict) -> list[str]:
    lines = [f"{c['label']:>12}  {100 * c['area']:6.2f}% of the image" for c in result["classes"]]
    if "patch_routes" in result:
        names = result["route_names"]
        counts = np.bincount(result["patch_routes"].reshape(-1), minlength=len(names))
        lines.append("patch routes: " + ", ".join(f"{n} → {name}" for name, n in zip(names, counts)))
    return lines


def heatmap_lines(result: dict) -> list[str]:
    lines = [f"map {result['size'][0]}x{result['size'][1]}: min {result['min']:.4g}, "
             f"mean {result['mean']:.4g}, max {result['max']:.4g}"]
    if "above_threshold" in result:
        lines.append(f"{100 * result['above_threshold']:.2f}% of the image above the threshold")
    return lines


def json_safe(result: dict) -> dict:
    """The result without its per-pixel arrays (for --json and logs)."""
    return {k: v for k, v in result.items() if not isinstance(v, np.ndarray) and not
            (isinstance(v, list) and v and isinstance(v[0], np.ndarray))}


"""Read, validate and write a bundle's manifest.json: the one code path for it."""
from __future__ import annotations

import json
from pathlib import Path

from runtime_py.errors import IntegrityError, PocketError, one_line

MANIFEST_NAME = "manifest.json"
SCHEMA_VERSION = 1


class ManifestError(PocketError):
    """A manifest that is missing, unreadable or does not follow the schema."""


def validate(manifest: dict) -> None:
    """Raise ManifestError naming the first schema violation."""
    import jsonschema

    from schemas import load_schema

    if not isinstance(manifest, dict):
        raise ManifestError("manifest.json must hold a JSON object")
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ManifestError(
            f"manifest schema_version {version!r} is not supported by this runtime_py "
            f"(it reads version {SCHEMA_VERSION}); rebuild the bundle with a matching `pocket`")
    validator = jsonschema.Draft202012Validator(load_schema("manifest"))
    error = jsonschema.exceptions.best_match(validator.iter_errors(manifest))
    if error is not None:
        where = "/".join(_printable(p) for p in error.absolute_path) or "(top level)"
        message = error.message
        if error.validator == "pattern" and error.schema == load_schema("manifest")["$defs"]["relpath"]:
            message = f"{error.instance!r} is not a relative path inside the bundle; refusing it"
        raise ManifestError(f"manifest.json is invalid at {where}: {one_line(message, 300)}")


def _printable(key: object) -> str:
    """A schema path element for a one-line message: keys with control characters quoted."""
    text = str(key)
    return repr(text) if not text.isprintable() else text


def read(bundle: str | Path) -> dict:
    """The validated manifest of a bundle folder."""
    path = Path(bundle) / MANIFEST_NAME
    if not path.is_file():
        raise ManifestError(f"{bundle} has no {MANIFEST_NAME}: is it a bundle written by `pocket build`?")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{path} is not valid JSON ({exc}); rebuild the bundle") from None
    validate(manifest)
    return manifest


def write(bundle: str | Path, manifest: dict) -> Path:
    """Validate and write manifest.json into a bundle folder."""
    validate(manifest)
    path = Path(bundle) / MANIFEST_NAME
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return path


def resolve(bundle: str | Path, relpath: str) -> Path:
    """A path named in the manifest, refused if it leaves the bundle folder."""
    root = Path(bundle).resolve()
    target = (root / relpath).resolve()
    if Path(relpath).is_absolute() or not target.is_relative_to(root):
        raise IntegrityError(f"manifest path '{relpath}' points outside the bundle; refusing to read it")
    return target


def input_shapes(manifest: dict) -> list[list[int]]:
    """Every model input's shape, in the order the runtime takes them: the image, then the
    extra inputs (tensors passed as they are)."""
    return [list(manifest["input"]["shape"])] + [list(e["shape"]) for e in manifest.get("extra_inputs", [])]


def find_artifact(manifest: dict, name: str) -> dict:
    """The artifact entry whose file equals `name` or, failing that, uniquely contains it."""
    from runtime_py.errors import UsageError, did_you_mean

    files = [a["file"] for a in manifest["artifacts"]]
    for art in manifest["artifacts"]:
        if art["file"] == name:
            return art
    hits = [a for a in manifest["artifacts"] if name in a["file"]]
    if len(hits) == 1:
        return hits[0]
    if hits:
        raise UsageError(f"'{name}' matches several artifacts: {', '.join(a['file'] for a in hits)}")
    raise UsageError(f"no artifact '{name}' in this bundle{did_you_mean(name, files)}; "
                     f"it has: {', '.join(files)}")

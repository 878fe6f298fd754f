"""Read, validate and write a bundle's manifest.json: the one code path for it."""
from __future__ import annotations

import json
from pathlib import Path

from runtime_py.errors import IntegrityError, PocketError, one_line

MANIFEST_NAME = "manifest.json"
SCHEMA_VERSION = 2              # what `pocket build` writes and validate() checks against
READABLE_VERSIONS = (1, 2)      # older versions are upgraded in memory (upgrade())


class ManifestError(PocketError):
    """A manifest that is missing, unreadable or does not follow the schema."""


def upgrade(manifest: dict) -> dict:
    """The manifest as the current SCHEMA_VERSION says it, upgraded in memory (the file is
    left as it is): the same dict when it already is current, else an upgraded copy.
    ManifestError for a version this runtime_py does not read.

    1 -> 2: an artifact's "backend" held either its delegate or its file-name tag; version 2
    names the delegate ("delegate": what the runtime hands ops to) and drops "backend" (the
    tag stays in the file name). ExecuTorch's "backend" was its delegate ("xnnpack",
    "coreml", "mps"); LiteRT's was the tag "litert" and its delegate is "xnnpack" (LiteRT
    applies XNNPACK by default); a Core ML package has no delegate (null).
    """
    if not isinstance(manifest, dict):
        raise ManifestError("manifest.json must hold a JSON object")
    version = manifest.get("schema_version")
    if type(version) is not int or version not in READABLE_VERSIONS:
        raise ManifestError(
            f"manifest schema_version {version!r} is not supported by this runtime_py "
            f"(it reads versions {', '.join(map(str, READABLE_VERSIONS))}); rebuild the bundle "
            "with a matching `pocket`")
    if version == SCHEMA_VERSION:
        return manifest
    import copy

    upgraded = copy.deepcopy(manifest)
    artifacts = upgraded.get("artifacts")
    for i, entry in enumerate(artifacts if isinstance(artifacts, list) else []):
        if not isinstance(entry, dict):
            continue                        # the schema names the problem
        if not isinstance(entry.get("backend"), str):
            raise ManifestError(f"manifest.json is invalid at artifacts/{i}: a schema_version 1 "
                                "artifact needs a string 'backend'")
        entry["delegate"] = _v1_delegate(entry.get("runtime"), entry.pop("backend"))
    upgraded["schema_version"] = SCHEMA_VERSION
    return upgraded


def _v1_delegate(runtime: object, backend: str) -> str | None:
    """A version-1 artifact's delegate, from its runtime and its "backend"."""
    if runtime == "litert":
        return "xnnpack"            # v1 wrote the file-name tag "litert"
    if runtime == "coreml":
        return None                 # Core ML runs the whole program itself
    return backend                  # ExecuTorch: the delegate ("xnnpack", "coreml", "mps")


def validate(manifest: dict) -> dict:
    """The manifest, upgraded to SCHEMA_VERSION (see upgrade()) and checked against the
    schema; ManifestError naming the first violation."""
    import jsonschema

    from schemas import load_schema

    manifest = upgrade(manifest)
    validator = jsonschema.Draft202012Validator(load_schema("manifest"))
    error = jsonschema.exceptions.best_match(validator.iter_errors(manifest))
    if error is not None:
        where = "/".join(_printable(p) for p in error.absolute_path) or "(top level)"
        message = error.message
        if error.validator == "pattern" and error.schema == load_schema("manifest")["$defs"]["relpath"]:
            message = f"{error.instance!r} is not a relative path inside the bundle; refusing it"
        raise ManifestError(f"manifest.json is invalid at {where}: {one_line(message, 300)}")
    return manifest


def _printable(key: object) -> str:
    """A schema path element for a one-line message: keys with control characters quoted."""
    text = str(key)
    return repr(text) if not text.isprintable() else text


def read(bundle: str | Path) -> dict:
    """The validated manifest of a bundle folder, as SCHEMA_VERSION says it (a bundle
    written with an older version is upgraded in memory)."""
    path = Path(bundle) / MANIFEST_NAME
    if not path.is_file():
        raise ManifestError(f"{bundle} has no {MANIFEST_NAME}: is it a bundle written by `pocket build`?")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{path} is not valid JSON ({exc}); rebuild the bundle") from None
    return validate(manifest)


def write(bundle: str | Path, manifest: dict) -> Path:
    """Validate and write manifest.json into a bundle folder (always SCHEMA_VERSION: an older
    manifest is written upgraded)."""
    manifest = validate(manifest)
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

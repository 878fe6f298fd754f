"""sha256 and size of an artifact: a file, or a folder such as a .mlpackage."""
from __future__ import annotations

import hashlib
from pathlib import Path

_CHUNK = 1 << 20


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_of(path: str | Path) -> str:
    """sha256 of a file; for a folder, of the lines '<sha256>  <relative posix path>\\n'
    of its files in sorted path order (so renaming, adding or editing any file changes it)."""
    path = Path(path)
    if path.is_file():
        return _file_sha256(path)
    lines = [f"{_file_sha256(f)}  {f.relative_to(path).as_posix()}\n"
             for f in sorted(p for p in path.rglob("*") if p.is_file())]
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def size_of(path: str | Path) -> int:
    """Bytes of a file, or of all files in a folder."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())

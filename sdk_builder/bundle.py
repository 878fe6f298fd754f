"""Write bundles atomically: build in a hidden staging folder, rename into place.

A failed or interrupted build leaves no half bundle and keeps the previous one.
One lock per bundle name stops two builds writing the same bundle at once; leftovers of
a killed build (staging folders, a displaced old bundle) are cleaned up by the next build.
"""
from __future__ import annotations

import errno
import fcntl
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from runtime_py.errors import PocketError


MIN_FREE_BYTES = 64 * 2**20   # refuse to start a build with less free space in the output folder


def bundle_name(model: str, target: str) -> str:
    """The folder `pocket build` writes for a model and target: dist/<model>-<target>."""
    return f"{model}-{target}"


def artifact_entry(fmt, recipe: str, result, passes: list[str] = ()) -> dict:
    """The manifest entry of an exported artifact (a Format row, its ExportResult), before
    verification fills in 'verification' and 'golden_outputs'."""
    from runtime_py.integrity import sha256_of, size_of

    return {"file": result.path.name, "format": fmt.name, "runtime": fmt.runtime,
            "delegate": fmt.delegate, "recipe": recipe, "recipe_details": result.details,
            "sha256": sha256_of(result.path), "size_bytes": size_of(result.path),
            "delegation": result.delegation, "canonical_passes": list(passes),
            "golden_outputs": [], "verification": {"status": "structure-only"}}


class BundleError(PocketError):
    """The output folder cannot take the bundle."""


def _prepare_out_dir(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BundleError(f"cannot create output folder {out_dir}: {exc.strerror}; choose another with -o") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise BundleError(f"output folder {out_dir} is not writable; choose another with -o")
    try:
        probe = tempfile.TemporaryFile(dir=out_dir)   # root passes os.access; a read-only FS does not
    except OSError as exc:
        raise BundleError(f"output folder {out_dir} is not writable ({exc.strerror}); "
                          "choose another with -o") from None
    probe.close()
    free = shutil.disk_usage(out_dir).free
    if free < MIN_FREE_BYTES:
        # Checked up front: the LiteRT converter exit()s the whole process on a write error.
        raise BundleError(f"only {free / 2**20:.1f} MiB free in {out_dir}; a build needs at least "
                          f"{MIN_FREE_BYTES // 2**20} MiB: free some space or choose another -o")


@contextmanager
def _lock(out_dir: Path, name: str) -> Iterator[None]:
    lock_path = out_dir / f".{name}.lock"
    with open(lock_path, "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise BundleError(f"another build is writing {out_dir / name} right now; "
                              "wait for it to finish") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _clean_leftovers(out_dir: Path, name: str) -> None:
    """Remove staging folders of killed builds; restore a displaced bundle if needed."""
    final = out_dir / name
    for old in sorted(out_dir.glob(f".{name}.old-*")):
        if not final.exists():
            os.rename(old, final)
        else:
            shutil.rmtree(old, ignore_errors=True)
    for partial in out_dir.glob(f".{name}.partial-*"):
        shutil.rmtree(partial, ignore_errors=True)
    stale_log = out_dir / f".{name}.build.log"     # the toolchain log of a killed build
    if stale_log.is_file():
        stale_log.unlink()


def _publish(stage: Path, final: Path) -> None:
    if not final.exists():
        os.rename(stage, final)
        return
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    os.rename(final, old)
    os.rename(stage, final)
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def staged_bundle(out_dir: Path, name: str) -> Iterator[Path]:
    """Yield an empty staging folder; on success it becomes out_dir/name."""
    out_dir = Path(out_dir)
    _prepare_out_dir(out_dir)
    with _lock(out_dir, name):
        _clean_leftovers(out_dir, name)
        stage = Path(tempfile.mkdtemp(prefix=f".{name}.partial-", dir=out_dir))
        try:
            yield stage
            _publish(stage, out_dir / name)
        except OSError as exc:
            shutil.rmtree(stage, ignore_errors=True)
            if exc.errno == errno.ENOSPC:
                raise BundleError(f"no space left in {out_dir}; free some or choose another -o") from None
            raise
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise


def write_tensor(path: Path, array: np.ndarray) -> None:
    """Raw little-endian float32, as the apps read it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.ascontiguousarray(array, dtype="<f4").tofile(path)


def read_tensor(path: Path, shape: list[int] | tuple[int, ...]) -> np.ndarray:
    data = np.fromfile(path, dtype="<f4")
    if data.size != int(np.prod(shape)):
        raise PocketError(f"{path.name} holds {data.size} floats, expected shape {tuple(shape)}")
    return data.reshape(shape).astype(np.float32)

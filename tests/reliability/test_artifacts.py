"""Corrupt artifacts (.pte, .tflite, .mlpackage) reach the real loaders in a subprocess:
each must give a clean PocketError (or, for a bit flip the format cannot see, run), never
crash the process; with the default integrity check the bundle refuses them all."""
from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

from tests.tools.probe import probe


FILES = {"pte": "toy.xnnpack.fp32.pte", "tflite": "toy.litert.fp32.tflite",
         "mlpackage": "toy.coreml.fp16.mlpackage"}
DAMAGES = ("empty", "truncated", "bit-flipped", "wrong-format")
MODES = ("single", "bundle")
CASES = [(f, d, m) for f in FILES for d in DAMAGES for m in MODES]


def _damage_file(path: Path, damage: str, other: Path) -> None:
    data = path.read_bytes()
    if damage == "empty":
        path.write_bytes(b"")
    elif damage == "truncated":
        path.write_bytes(data[:len(data) // 2])
    elif damage == "bit-flipped":
        b, rng = bytearray(data), random.Random(0)
        for _ in range(32):       # in the flatbuffer's tables and offsets, not only weights
            i = rng.randrange(min(len(b), 4096))
            b[i] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(b))
    else:
        path.write_bytes(other.read_bytes())


def damage(bundle: Path, fmt: str, kind: str) -> None:
    """Damage one artifact of the bundle in place."""
    path = bundle / FILES[fmt]
    if fmt != "mlpackage":
        other = bundle / FILES["tflite" if fmt == "pte" else "pte"]
        _damage_file(path, kind, other)
        return
    if kind == "empty":
        shutil.rmtree(path)
        path.mkdir()
    elif kind == "truncated":
        manifest = path / "Manifest.json"
        manifest.write_bytes(manifest.read_bytes()[:40])
    elif kind == "bit-flipped":
        spec = next(path.rglob("model.mlmodel"))
        _damage_file(spec, "bit-flipped", spec)
    else:
        shutil.rmtree(path)
        path.write_bytes((bundle / FILES["tflite"]).read_bytes())


@pytest.fixture(scope="module")
def outcomes(toy_bundle, tmp_path_factory) -> dict:
    """All cases in one batch of worker processes (a crash restarts the worker)."""
    root = tmp_path_factory.mktemp("damaged")
    cases, keys = [], []
    for fmt, kind, mode in CASES:
        bundle = Path(shutil.copytree(toy_bundle, root / f"{fmt}-{kind}-{mode}"))
        damage(bundle, fmt, kind)
        if mode == "single":
            alone = root / f"{fmt}-{kind}-alone"
            alone.mkdir()
            shutil.move(bundle / FILES[fmt], alone / FILES[fmt])
            cases.append((alone / FILES[fmt], False))
        else:
            cases.append((bundle, False, FILES[fmt]))
        keys.append((fmt, kind, mode))
        if mode == "bundle":      # the same damage with the default integrity check
            cases.append((bundle, True, FILES[fmt]))
            keys.append((fmt, kind, "bundle+sha256"))
        if fmt in ("pte", "mlpackage") and mode == "single":    # structure readers (pocket info/verify)
            cases.append((alone / FILES[fmt], "describe"))
            keys.append((fmt, kind, "describe"))
    for fmt in ("pte", "tflite"):                     # the undamaged bundle, as a control
        cases.append((toy_bundle, True, FILES[fmt]))
        keys.append((fmt, "undamaged", "bundle+sha256"))
    return dict(zip(keys, probe(cases)))


@pytest.mark.parametrize("fmt, kind, mode", CASES, ids=["-".join(c) for c in CASES])
def test_damaged_artifact_gives_a_clean_error_never_a_crash(outcomes, fmt, kind, mode):
    outcome, message = outcomes[(fmt, kind, mode)]
    assert outcome in ("error", "ran"), (outcome, message)       # never "crash" or "other"
    if outcome == "error":
        assert message and "\n" not in message
    if kind != "bit-flipped" and fmt != "mlpackage":
        assert outcome == "error" and FILES[fmt] in message, message
    if fmt == "mlpackage" and kind != "bit-flipped":
        assert outcome == "error" and "Core ML package" in message, message


@pytest.mark.parametrize("fmt", list(FILES))
@pytest.mark.parametrize("kind", DAMAGES)
def test_default_integrity_check_refuses_any_damage(outcomes, fmt, kind):
    outcome, message = outcomes[(fmt, kind, "bundle+sha256")]
    assert outcome == "error" and "sha256" in message and FILES[fmt] in message, message


@pytest.mark.parametrize("fmt", ["pte", "mlpackage"])
@pytest.mark.parametrize("kind", DAMAGES)
def test_structure_readers_survive_damage(outcomes, fmt, kind):
    outcome, message = outcomes[(fmt, kind, "describe")]
    assert outcome in ("error", "ran"), (outcome, message)
    if kind in ("empty", "wrong-format"):
        assert outcome == "error", message


@pytest.mark.parametrize("fmt", ["pte", "tflite"])
def test_undamaged_bundle_loads_and_runs(outcomes, fmt):
    assert outcomes[(fmt, "undamaged", "bundle+sha256")] == ("ran", "")


# stored as .pte.bin: the repository keeps no build outputs, and this is a fixture, not one
CRASHER = Path(__file__).resolve().parents[1] / "fixtures" / "crashers" / "toy_xnnpack_log_abort.pte.bin"


def test_a_file_that_crashes_the_native_runtime_is_caught_by_the_probe(tmp_path):
    """Found by `make fuzz`: a damaged toy .pte whose XNNPACK error log holds invalid UTF-8;
    ExecuTorch's pybind log sink then throws inside C++ and the process aborts. Unverified
    loads (bare artifact, or check_integrity=False) probe in a child process first."""
    import shutil
    import subprocess
    import sys

    crasher = shutil.copy(CRASHER, tmp_path / "toy_xnnpack_log_abort.pte")
    code = ("import sys, runtime_py\n"
            "from runtime_py.errors import IntegrityError\n"
            "try:\n    runtime_py.load(sys.argv[1])\n"
            "except IntegrityError as e:\n    print('REFUSED', e)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(crasher)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "REFUSED toy_xnnpack_log_abort.pte crashed the executorch runtime (SIGABRT)" in proc.stdout


def test_the_damage_matrix_covers_every_registered_runtime(toy_bundle):
    """A new runtime gets a toy artifact from tests/tools/make_toy_bundle.py (it reads the
    registry); this names the one place it must be added by hand: FILES above."""
    from runtime_py import manifest as mf
    from runtime_py.runtimes import RUNTIME_BY_SUFFIX, RUNTIME_NAMES

    in_toy = {a["runtime"] for a in mf.read(toy_bundle)["artifacts"]}
    damaged = {RUNTIME_BY_SUFFIX[Path(name).suffix] for name in FILES.values()}
    assert in_toy == set(RUNTIME_NAMES), f"the toy bundle lacks {set(RUNTIME_NAMES) - in_toy}"
    assert damaged == set(RUNTIME_NAMES), f"add an artifact of {set(RUNTIME_NAMES) - damaged} to FILES"

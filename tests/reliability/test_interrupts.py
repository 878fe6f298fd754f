"""Real `pocket build` processes interrupted mid-export (SIGINT, SIGTERM, SIGKILL) and two
builds into one folder at once: no half bundle, the previous bundle intact, leftovers
cleaned by the next run, a lock instead of a mix."""
from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

from sdk_builder.progress import HOLD_ENV

NAME = "skipnet_m-android"


TOY = ["--model-file", str(Path(__file__).resolve().parents[1] / "tools" / "make_toy_bundle.py") + ":toy_module",
       "--input-shape", "1,3,8,8"]
TOY_NAME = "make_toy_bundle-android"


def start_build(out: Path, *model: str, hold: Path | None = None) -> subprocess.Popen:
    """A real build; with `hold`, it stops at its first export step until `hold` is removed."""
    env = dict(os.environ)
    if hold is not None:
        env[HOLD_ENV] = f"export={hold}"
    return subprocess.Popen([sys.executable, "-c", CLI_WITH_CTRL_C, "build", *(model or ["skipnet_m"]),
                             "-r", "fp32", "-o", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


# A suite started in the background (`make test &` in a script) hands its children SIGINT
# ignored, and Python then installs no KeyboardInterrupt handler; a user's terminal build
# has one. (Restoring it in preexec_fn would fork a multithreaded pytest.)
CLI_WITH_CTRL_C = ("import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
                   "from sdk_builder.cli import main; main()")


def wait_until_held(proc: subprocess.Popen, hold: Path, timeout: float = 300) -> None:
    """Block until the build has reached (and is held at) its first export step."""
    deadline = time.time() + timeout
    while not hold.exists():
        if proc.poll() is not None:
            raise AssertionError(f"build ended before its export step:\n{proc.stderr.read()}")
        if time.time() > deadline:
            proc.kill()
            raise AssertionError("build never reached its export step")
        time.sleep(0.05)
    assert hold.read_text().startswith("export "), hold.read_text()


def previous_bundle(out: Path, name: str = NAME) -> Path:
    old = out / name
    old.mkdir(parents=True)
    (old / "manifest.json").write_text("previous")
    return old


def visible(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if not p.name.startswith("."))


def test_sigint_and_sigterm_mid_export_and_a_second_build_meanwhile(tmp_path):
    """With a tiny user model (--model-file), so the three builds take seconds."""
    outs = {signal.SIGINT: tmp_path / "a", signal.SIGTERM: tmp_path / "b"}
    for out in outs.values():
        previous_bundle(out, TOY_NAME)
    holds = {sig: tmp_path / f"held-{sig.name}" for sig in outs}
    procs = {sig: start_build(out, *TOY, hold=holds[sig]) for sig, out in outs.items()}
    for sig, proc in procs.items():
        wait_until_held(proc, holds[sig])
    # a second build into the same folder while the first is exporting: refused, nothing mixed
    second = subprocess.run([sys.executable, "-m", "sdk_builder.cli", "build", *TOY, "-r", "fp32",
                             "-o", str(outs[signal.SIGINT])], capture_output=True, text=True, timeout=300)
    for sig, proc in procs.items():
        proc.send_signal(sig)
    assert second.returncode != 0
    assert second.stderr.strip().splitlines()[-1].startswith("error: another build is writing"), second.stderr
    for sig, proc in procs.items():
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, err
        assert err.strip().splitlines()[-1] == "error: interrupted; nothing was published", err
        assert "Traceback" not in err
        out = outs[sig]
        assert (out / TOY_NAME / "manifest.json").read_text() == "previous"
        assert not list(out.glob(f".{TOY_NAME}.partial-*")) and not list(out.glob(f".{TOY_NAME}.old-*"))
        assert visible(out) == [TOY_NAME, f"{TOY_NAME}.failed.log"]


def test_sigkill_mid_export_then_the_next_run_cleans_up(tmp_path):
    out = tmp_path / "out"
    previous_bundle(out)
    hold = tmp_path / "held"
    proc = start_build(out, hold=hold)
    wait_until_held(proc, hold)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert (out / NAME / "manifest.json").read_text() == "previous"
    assert visible(out) == [NAME]                                    # no half bundle in sight
    assert list(out.glob(f".{NAME}.partial-*"))                      # hidden staging left behind
    # the next run (here one refused at its load step: a malicious .pt) cleans up first
    evil = tmp_path / "evil.pt"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    evil.write_bytes(pickle.dumps({"w": Evil()}))
    rerun = subprocess.run([sys.executable, "-m", "sdk_builder.cli", "build", "skipnet_m", "-r", "fp32",
                            "--weights", str(evil), "-o", str(out)], capture_output=True, text=True,
                           timeout=300)
    assert rerun.returncode != 0 and "refused to load evil.pt" in rerun.stderr.splitlines()[-1]
    assert not (tmp_path / "pwned").exists()
    assert not list(out.glob(f".{NAME}.partial-*")) and not (out / f".{NAME}.build.log").exists()
    assert (out / NAME / "manifest.json").read_text() == "previous"

"""models.train runs unchanged under torchrun with 2 CPU processes (gloo); export tier: it spawns
two training processes."""
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch

from models.registry import get
from models.weights_io import load_weights


REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_two_processes_trains_and_writes(tmp_path):
    out = tmp_path / "x.safetensors"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--nnodes", "1", "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
           "-m", "models.train", "skipnet_m", "--steps", "3", "--epochs", "1", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert out.is_file()

    spec = get("skipnet_m")
    torch.manual_seed(0)             # the seed train.py uses: same fresh init
    fresh = spec.build()
    trained = load_weights(spec.build(), out)
    fresh_sd, trained_sd = fresh.state_dict(), trained.state_dict()
    changed = [k for k in fresh_sd if not torch.equal(fresh_sd[k], trained_sd[k])]
    assert any(k.endswith("weight") and "head" in k for k in changed)
    assert len(changed) > len(fresh_sd) // 2

"""One Session shared by 8 threads (x500 calls) computes what serial calls compute;
several Sessions in one process do not disturb each other."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import runtime_py


ARTIFACTS = ["toy.xnnpack.fp32.pte", "toy.litert.fp32.tflite"]
THREADS, CALLS = 8, 500


def _inputs(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 1, 3, 8, 8)).astype(np.float32)


@pytest.mark.parametrize("artifact", ARTIFACTS)
def test_one_session_shared_by_threads_matches_serial(toy_bundle, artifact):
    session = runtime_py.load(toy_bundle, artifact=artifact)
    xs = _inputs(64, 0)
    want = [session.run_raw(x)[0].copy() for x in xs]

    def worker(t: int) -> int:
        bad = 0
        for i in range(CALLS):
            k = (t * 7 + i) % len(xs)
            if i % 5 == 0:   # the full path too: preprocess -> run -> postprocess
                bad += session.run(xs[k])["top_k"][0]["index"] != int(np.argmax(want[k]))
            else:
                bad += not np.array_equal(session.run_raw(xs[k])[0], want[k])
        return bad

    with ThreadPoolExecutor(THREADS) as pool:
        mismatches = sum(pool.map(worker, range(THREADS)))
    assert mismatches == 0


def test_several_sessions_are_independent(toy_bundle):
    sessions = [runtime_py.load(toy_bundle, artifact=a) for a in ARTIFACTS for _ in range(2)]
    xs = _inputs(32, 1)
    want = [[s.run_raw(x)[0].copy() for x in xs] for s in sessions]
    # the two runtimes agree with each other too (fp32, same model)
    np.testing.assert_allclose(np.array(want[0]), np.array(want[2]), atol=1e-5)

    def worker(j: int) -> int:
        s = sessions[j % len(sessions)]
        return sum(not np.array_equal(s.run_raw(xs[i % len(xs)])[0], want[j % len(sessions)][i % len(xs)])
                   for i in range(200))

    with ThreadPoolExecutor(8) as pool:
        assert sum(pool.map(worker, range(8))) == 0

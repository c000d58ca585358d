"""The core's BLAS stays single-threaded when others in the process raise it."""

import numpy as np
import pytest

import layerparallel as lp


def core_blas_threads(threadpoolctl):
    # The core links the scipy-openblas32 wheel's library; numpy has its own.
    found = [i["num_threads"] for i in threadpoolctl.threadpool_info()
             if i.get("internal_api") == "openblas" and
             i["filepath"].endswith("libscipy_openblas.so")]
    if not found:
        pytest.skip("the core's OpenBLAS is not visible to threadpoolctl (system BLAS build)")
    return found[0]


def test_threadpool_limits_does_not_thread_the_core_blas():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    X, Y = lp.datasets.peaks(n=64, seed=0)
    net = lp.ODEResNet(2, 24, 4, 5, T=1.0)
    theta = net.init("he", seed=0)
    before = net.loss_and_grad(theta, X, Y)
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        if core_blas_threads(threadpoolctl) < 2:
            pytest.skip("OpenBLAS runs one thread at most on this machine")
        during = net.loss_and_grad(theta, X, Y)
        assert core_blas_threads(threadpoolctl) == 1  # the core took it back
    assert during[0] == pytest.approx(before[0], rel=1e-13)
    assert np.allclose(during[1].data, before[1].data, rtol=1e-12, atol=0)

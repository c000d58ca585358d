"""The core's own threads and Python threads sharing one network."""

import threading

import numpy as np
import pytest

import layerparallel as lp


def test_results_do_not_depend_on_core_threads():
    X, Y = lp.datasets.peaks(n=777, seed=1)
    net = lp.ODEResNet(2, 16, 40, 5, activation="tanh", gamma_tik=1e-3)
    theta = net.init("glorot", seed=1)
    old = lp.get_num_threads()
    try:
        results = []
        for t in (1, 2, 3):
            lp.set_num_threads(t)
            J, g = net.loss_and_grad(theta, X, Y)
            results.append((J, g.data.copy(), net.forward(theta, X)))
    finally:
        lp.set_num_threads(old)
    for J, g, U in results[1:]:
        assert J == pytest.approx(results[0][0], rel=1e-14)
        np.testing.assert_allclose(g, results[0][1], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(U, results[0][2], rtol=1e-13)


@pytest.mark.slow
def test_python_threads_share_a_network_safely():
    net = lp.ODEResNet(2, 16, 64, 5, activation="tanh")
    theta = net.init("glorot", seed=0)
    inputs = [lp.datasets.peaks(n=50 + 37 * i, seed=i)[0] for i in range(4)]
    expected = [net.forward(theta, X) for X in inputs]
    wrong = []

    def work(i):
        for _ in range(30):
            if not np.array_equal(net.forward(theta, inputs[i]), expected[i]):
                wrong.append(i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not wrong


def test_tiny_T_is_refused():
    with pytest.raises(ValueError, match="T"):
        lp.ODEResNet(3, 6, 2, 4, T=5e-324)


def test_set_num_threads_validates():
    with pytest.raises(ValueError, match="n"):
        lp.set_num_threads(0)

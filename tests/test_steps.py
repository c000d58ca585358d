"""MGRIT over training steps against serial training."""

import os

import numpy as np
import pytest

import layerparallel as lp
from layerparallel import steps
from layerparallel.mgrit import critical_path

from conftest import TESTS, mpi_test, mpirun

SOLVERS = ("naive", "solver1", "solver2", "solver3")
CYCLES = ("two", "V", "F")
# (problem, solver, cycle, N): every preset and cycle of both built-in problems
# (binary addition shrunk so the whole grid runs in seconds; the same code).
CASES = [("xor", s, c, 64) for s in SOLVERS for c in CYCLES] + \
        [("ba", s, c, 32) for s in SOLVERS for c in CYCLES]
TOL = 1e-10


def make_problem(name):
    if name == "xor":
        return lp.steps.XOR()
    return lp.steps.BinaryAddition(n=60, bits=6, hidden=(12, 8), batch_size=10, unit=10,
                                   reduction="sum" if name == "ba_sum" else "mean")


def solve_kwargs():
    return dict(tol=TOL, max_iter=100)


# ---- the step itself ---------------------------------------------------------

def numpy_step(problem, w, rows, alpha):
    """One pass over `rows` in mini-batches: an independent numpy model of the step."""
    w = w.copy()
    for b0 in range(0, len(rows), problem.batch_size):
        r = rows[b0:b0 + problem.batch_size]
        Ws = problem.unpack(w)
        acts = [problem.X[r]]
        for W in Ws:
            acts.append(1.0 / (1.0 + np.exp(-(acts[-1] @ W))))
        d = (acts[-1] - problem.Y[r]) * acts[-1] * (1.0 - acts[-1])
        if problem.reduction == "mean":
            d = d / len(r)
        grads = []
        for l in range(len(Ws) - 1, -1, -1):
            grads.append(acts[l].T @ d)
            if l > 0:
                d = (d @ Ws[l].T) * acts[l] * (1.0 - acts[l])
        w = w - alpha * np.concatenate([g.ravel() for g in grads[::-1]])
    return w


def test_xor_serial_training_is_the_appendix_code():
    # np.random.seed(1); syn0 = 2 rand(3,4) - 1; syn1 = 2 rand(4,1) - 1; full-batch steps
    xor = lp.steps.XOR()
    rs = np.random.RandomState(1)
    syn0 = 2 * rs.random_sample((3, 4)) - 1
    syn1 = 2 * rs.random_sample((4, 1)) - 1
    w0 = xor.initial_weights()
    assert np.array_equal(w0, np.concatenate([syn0.ravel(), syn1.ravel()]))
    X = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=float)
    y = np.array([[0, 1, 1, 0]], dtype=float).T
    alpha = 0.7
    for _ in range(300):
        l1 = 1 / (1 + np.exp(-(X @ syn0)))
        l2 = 1 / (1 + np.exp(-(l1 @ syn1)))
        l2_delta = (y - l2) * (l2 * (1 - l2))
        l1_delta = l2_delta @ syn1.T * (l1 * (1 - l1))
        syn1 += alpha * l1.T @ l2_delta
        syn0 += alpha * X.T @ l1_delta
    w = xor.serial(300, solver="naive", alpha_base=alpha)
    np.testing.assert_allclose(w, np.concatenate([syn0.ravel(), syn1.ravel()]), rtol=0,
                               atol=1e-12)
    # and it learns XOR (alpha_base = 1.0)
    assert xor.loss(xor.serial(1000, solver="naive")) < 0.01 * xor.loss(w0)


@pytest.mark.parametrize("name", ["xor", "ba", "ba_sum"])
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("mapping", ["local", "injected"])
@pytest.mark.parametrize("index_point", ["start", "end"])
def test_compiled_step_matches_numpy_on_every_level(name, solver, mapping, index_point):
    p = make_problem(name)
    rng = np.random.default_rng(5)
    w = p.initial_weights() + 0.1 * rng.standard_normal(p.n_weights)
    ab, am = p.alpha_base, 3 * p.alpha_base
    for level, step in [(0, 0), (0, 7), (1, 6), (2, 12), (3, 40)]:
        s = 2 ** level
        alpha = ab if solver == "naive" else min(s * ab, am)
        point = step + s if index_point == "end" else step
        i = point if mapping == "injected" else point // s
        K = p.n_units
        if solver in ("naive", "solver1"):
            rows = np.arange(p.n_examples)
        else:
            j = (i if solver == "solver2" else i // 2) % K
            rows = np.arange(j * p.unit, (j + 1) * p.unit)
        got = p.step(level, step, w, solver=solver, alpha_base=ab, alpha_max=am,
                     mapping=mapping, index_point=index_point)
        np.testing.assert_allclose(got, numpy_step(p, w, rows, alpha), rtol=1e-12, atol=1e-13)


def test_data_and_learning_rate_of_the_presets():
    app = lp.steps.XOR().app("solver3", alpha_base=1.0, alpha_max=8.0, mapping="injected")
    assert app.alpha(8, 12) == 4.0 and app.alpha(16, 32) == 8.0 and app.alpha(3, 4) == 1.0
    assert app.data_range(8, 12) == (0, 1)          # floor(8 / 2) mod 4 = 0
    assert app.data_range(6, 8) == (3, 1)           # floor(6 / 2) mod 4 = 3
    local = lp.steps.XOR().app("solver3", mapping="local")
    assert local.data_range(8, 12) == (1, 1)        # k = 2 on level 2: floor(2 / 2) = 1
    assert local.data_range(6, 8) == (1, 1)         # k = 3 on level 1: floor(3 / 2) = 1
    s2 = lp.steps.XOR().app("solver2", mapping="local")
    assert s2.data_range(6, 8) == (3, 1) and s2.data_range(5, 6) == (1, 1)
    naive = lp.steps.XOR().app("naive", alpha_base=0.5)
    assert naive.alpha(0, 16) == 0.5 and naive.data_range(0, 16) == (0, 4)
    # index_point="end": a step's data from its end point, on every level
    end = lp.steps.XOR().app("solver2", index_point="end")
    assert end.data_range(0, 1) == (1, 1) and end.data_range(3, 4) == (0, 1)
    assert end.data_range(6, 8) == (0, 1)           # k + 1 = 4 on level 1: 4 mod 4
    assert end.data_range(8, 12) == (3, 1)          # k + 1 = 3 on level 2
    end3 = lp.steps.XOR().app("solver3", index_point="end", mapping="injected")
    assert end3.data_range(8, 12) == (2, 1)         # floor(12 / 2) mod 4 = 2


def test_end_index_point_is_serial_training_on_the_shifted_data():
    # "end": w_{i-1} -> w_i trains on example i mod 4 (block row i of the global
    # system); serial training is the appendix code on one example a step.
    xor = lp.steps.XOR()
    w0 = xor.initial_weights()
    w = w0.copy()
    for i in range(1, 41):
        w = numpy_step(xor, w, np.array([i % 4]), 1.0)
    got = xor.serial(40, solver="solver2", index_point="end")
    np.testing.assert_allclose(got, w, rtol=0, atol=1e-12)
    assert np.abs(got - xor.serial(40, solver="solver2")).max() > 1e-3
    # the option only moves the data of the serialized presets
    assert np.array_equal(xor.serial(40, solver="solver1", index_point="end"),
                          xor.serial(40, solver="solver1"))


@pytest.mark.parametrize("solver, cycle", [("solver2", "F"), ("solver3", "two"),
                                           ("solver2", "V")])
def test_end_index_point_converges_to_its_serial_training(solver, cycle):
    xor = lp.steps.XOR()
    res = lp.steps.solve(xor, None, 72, cycle=cycle, solver=solver, index_point="end",
                         **solve_kwargs())
    ref = xor.serial(72, solver=solver, index_point="end", all_states=True)
    assert res.converged and res.settings["index_point"] == "end"
    assert np.abs(res.states() - ref).max() <= 1e-8
    # the compiled app and its Python callable: the same residual history
    b = lp.steps.solve(xor.phi(solver, index_point="end"), xor.initial_weights(), 72,
                       cycle=cycle, **solve_kwargs())
    assert b.residuals == res.residuals


# ---- MGRIT converges to serial training -------------------------------------

@pytest.mark.parametrize("name, solver, cycle, N", CASES)
def test_converged_mgrit_equals_serial_training(name, solver, cycle, N):
    p = make_problem(name)
    res = lp.steps.solve(p, None, N, cycle=cycle, solver=solver, **solve_kwargs())
    ref = p.serial(N, solver=solver, all_states=True)
    assert res.converged and res.iterations >= 1
    assert res.residuals[-1] <= TOL
    assert np.abs(res.weights - ref[-1]).max() <= 1e-8
    assert (res.first_point, res.last_point) == (0, N)
    assert np.abs(res.states() - ref).max() <= 1e-8      # every step's weights
    assert 0.0 < res.rho < 1.0
    assert res.rho == pytest.approx((res.residuals[-1] / res.residuals[0])
                                    ** (1.0 / res.iterations))


def test_default_tolerance_scales_with_sqrt_n():
    xor = lp.steps.XOR()
    res = lp.steps.solve(xor, None, 400, cycle="F", solver="solver1")
    assert res.settings["tol"] == pytest.approx(1e-9 * 20.0)
    assert res.converged and res.residuals[-1] <= 2e-8 < res.residuals[-2]


def test_f_relaxation_two_level_is_parareal_exact_after_n_over_c_iterations():
    # Parareal: iteration k makes coarse interval k exact, so after k iterations
    # the steps 0..k c agree with serial training to rounding, and after N/c
    # iterations all of them do, whatever the convergence rate.
    xor = lp.steps.XOR()
    N = 24
    for solver in ("naive", "solver3"):
        ref = xor.serial(N, solver=solver, all_states=True)
        for c in (2, 4):
            kw = dict(cfactor=c, cycle="two", relax="F", tol=0, skip_first_down=False,
                      solver=solver, min_coarse=1)
            for k in range(1, N // c + 1):
                res = lp.steps.solve(xor, None, N, max_iter=k, **kw)
                assert res.iterations == k
                err = np.abs(res.states() - ref).max(axis=1)
                assert err[:k * c + 1].max() <= 1e-13, (solver, c, k, err)
                if k == 1:  # the rest is not exact yet
                    assert err[k * c + 1:].max() > 1e-4, (solver, c, err)
            assert np.abs(res.weights - ref[-1]).max() <= 1e-13


def test_steps_run_on_the_shared_engine():
    # The compiled XOR app and a Python callable with the same step go through
    # the same layerparallel::MGRIT: identical residual histories and weights.
    for p, solver in [(lp.steps.XOR(), "solver3"), (make_problem("ba"), "solver1")]:
        w0 = p.initial_weights()
        for cycle in CYCLES:
            a = lp.steps.solve(p, None, 48, cycle=cycle, solver=solver, mapping="local")
            b = lp.steps.solve(p.phi(solver, mapping="local"), w0, 48, cycle=cycle)
            assert a.residuals == b.residuals
            assert np.array_equal(a.weights, b.weights)
            # lp.solve (the layer-parallel API) on the same callable: the same numbers again
            mg = steps.mgrit_options(48, cycle=cycle)
            c = lp.solve(p.phi(solver, mapping="local"), w0, 48, solver=mg, init_guess=w0)
            assert c.residuals == a.residuals


@pytest.mark.slow
def test_an_independent_numpy_phi_gives_the_same_convergence():
    xor = lp.steps.XOR()

    def phi(level, step, w):
        s = 2 ** level
        alpha = min(s * 1.0, 8.0)
        return numpy_step(xor, w, np.array([(step // 2) % 4]), alpha)

    a = lp.steps.solve(xor, None, 128, cycle="F", solver="solver3", mapping="injected")
    b = lp.steps.solve(phi, xor.initial_weights(), 128, cycle="F")
    assert a.iterations == b.iterations
    np.testing.assert_allclose(a.residuals, b.residuals, rtol=1e-6, atol=1e-14)
    assert np.abs(a.weights - b.weights).max() <= 1e-8


# ---- the speedup model ------------------------------------------------------

def critical_path_count(n, cycle, min_coarse=10):
    """The documented counting for c = 2 and FCF: per level FCF 3 + FAS residual 2 +
    interpolation 1; the coarsest level its size."""
    sizes = [n]
    if cycle == "two":
        sizes.append(n // 2)
    else:
        while sizes[-1] > min_coarse:
            sizes.append(sizes[-1] // 2)

    def cost(l, fcycle):
        if l == len(sizes) - 1:
            return sizes[l]
        extra = cost(l + 1, False) if fcycle and l + 1 < len(sizes) - 1 else 0
        return 3 + 2 + 1 + cost(l + 1, fcycle) + extra

    return cost(0, cycle == "F")


@pytest.mark.parametrize("cycle", CYCLES)
@pytest.mark.parametrize("N", [100, 400, 1600, 25600])
def test_potential_speedup_counts_the_critical_path(cycle, N):
    count = critical_path_count(N, cycle)
    mg = steps.mgrit_options(N, cycle=cycle)
    assert critical_path(N, cfactor=2, max_levels=mg.max_levels, min_coarse=10, relax="FCF",
                         cycle=mg.cycle)[0] == count
    assert lp.steps.potential_speedup(N, 7, cycle=cycle) == pytest.approx(N / (7 * count))
    if N == 100:
        assert critical_path_count(100, "two") == 56          # 3 + 2 + 1 + 50
        assert critical_path_count(100, "V") == 4 * 6 + 6     # 100, 50, 25, 12 -> 6
        res = lp.steps.solve(lp.steps.XOR(), None, N, cycle=cycle, solver="solver1")
        assert res.critical_path == count
        assert res.potential_speedup == pytest.approx(N / (res.iterations * count))


# ---- at two ranks -----------------------------------------------------------

@mpi_test
def test_two_ranks_converge_to_serial_training(tmp_path):
    out = tmp_path / "steps.npz"
    mpirun(2, os.path.join(TESTS, "mpi", "steps_ranks.py"), out)
    d = np.load(out)
    for name, solver, cycle, N in CASES:
        p = make_problem(name)
        key = f"{name}_{solver}_{cycle}"
        ref = p.serial(N, solver=solver)
        assert np.abs(d[key + "_w"] - ref).max() <= 1e-8, key
        assert float(d[key + "_states_err"]) <= 1e-8, key
        one = lp.steps.solve(p, None, N, cycle=cycle, solver=solver, **solve_kwargs())
        assert int(d[key + "_it"]) == one.iterations, key
        np.testing.assert_allclose(d[key + "_r"], one.residuals, rtol=1e-9, atol=1e-14,
                                   err_msg=key)
    xor = make_problem("xor")
    assert np.abs(d["callable_w"] - xor.serial(64, solver="solver3")).max() <= 1e-8
    np.testing.assert_array_equal(d["callable_r"], d["xor_solver3_F_r"])
    one = lp.steps.solve(xor, None, 64, cycle="F", solver="solver1", conventions="xbraid",
                         **solve_kwargs())
    assert int(d["xbraid_it"]) == one.iterations
    np.testing.assert_allclose(d["xbraid_r"], one.residuals, rtol=1e-9, atol=1e-14)
    assert np.abs(d["xbraid_w"] - xor.serial(64, solver="solver1")).max() <= 1e-8


# ---- bad input --------------------------------------------------------------

@pytest.mark.parametrize("kwargs, name", [
    (dict(solver="solver4"), "solver"),
    (dict(cycle="W"), "cycle"),
    (dict(mapping="left"), "mapping"),
    (dict(index_point="middle"), "index_point"),
    (dict(alpha_base=2.0, alpha_max=1.0), "alpha_max"),
    (dict(alpha_base=-1.0), "alpha_base"),
    (dict(tol=-1.0), "tol"),
    (dict(max_iter=-1), "max_iter"),
    (dict(cfactor=1), "cfactor"),
    (dict(cycle="two", max_levels=3), "max_levels"),
    (dict(relax="C"), "relax"),
    (dict(n_steps=0), "n_steps"),
    (dict(w0=np.zeros(5)), "w0"),
    (dict(init_guess=np.zeros(3)), "init_guess"),
])
def test_bad_options_are_value_errors_naming_the_argument(kwargs, name):
    args = dict(phi=lp.steps.XOR(), w0=None, n_steps=16)
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        lp.steps.solve(**args)


def test_bad_python_phi_arguments():
    with pytest.raises(ValueError, match="phi"):
        lp.steps.solve(3, np.zeros(2), 8)
    with pytest.raises(ValueError, match="w0"):
        lp.steps.solve(lambda l, s, w: w, None, 8)
    with pytest.raises(ValueError, match="solver"):
        lp.steps.solve(lambda l, s, w: w, np.zeros(2), 8, solver="solver1")
    with pytest.raises(ValueError, match="index_point"):
        lp.steps.solve(lambda l, s, w: w, np.zeros(2), 8, index_point="end")
    with pytest.raises(ValueError, match="index_point"):
        lp.steps.XOR().app("solver2", index_point=1)
    with pytest.raises(ValueError, match="unit"):
        lp.steps.BinaryAddition(n=50, unit=7)
    with pytest.raises(ValueError, match="reduction"):
        lp.steps.XOR(reduction="max")
    with pytest.raises(ValueError, match="level"):
        lp.steps.XOR().step(-1, 0, lp.steps.XOR().initial_weights())


# ---- the `steps` subcommand -------------------------------------------------

def steps_parser():
    import argparse

    from layerparallel.cli import steps as steps_cli

    p = argparse.ArgumentParser(prog="layerparallel")
    steps_cli.add_parser(p.add_subparsers(dest="command"))
    return p


def test_steps_command_prints_one_row_per_n(capsys):
    import json

    args = steps_parser().parse_args(["steps", "--problem", "xor", "--solver", "solver3",
                                      "--cycle", "F", "--steps", "64,128", "--json"])
    assert args.func(args) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["N"] for r in rows] == [64, 128]
    for r in rows:
        ref = lp.steps.solve(lp.steps.XOR(), None, r["N"], cycle="F", solver="solver3")
        assert r["iterations"] == ref.iterations and r["converged"]
        assert r["error"] <= 1e-7
        assert r["potential_speedup"] == pytest.approx(ref.potential_speedup)
    args = steps_parser().parse_args(["steps", "--steps", "32", "--cycle", "two"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "|w_N - serial|" in out and out.strip().splitlines()[-1].split()[0] == "32"
    with pytest.raises(SystemExit):
        steps_parser().parse_args(["steps", "--steps", "10,x"])
    # --index-point end: the solve and its serial reference on the shifted data
    args = steps_parser().parse_args(["steps", "--solver", "solver2", "--cycle", "two",
                                      "--steps", "48", "--index-point", "end", "--json"])
    assert args.func(args) == 0
    row = json.loads(capsys.readouterr().out.splitlines()[-1])
    ref = lp.steps.solve(lp.steps.XOR(), None, 48, cycle="two", solver="solver2",
                         index_point="end")
    assert row["index_point"] == "end" and row["iterations"] == ref.iterations
    assert row["error"] <= 1e-7


@pytest.mark.slow
def test_steps_command_plots_speedup_against_n(tmp_path):
    pytest.importorskip("matplotlib")
    fig = tmp_path / "speedup.png"
    args = steps_parser().parse_args(["steps", "--steps", "32,64", "--plot", str(fig)])
    assert args.func(args) == 0
    assert fig.stat().st_size > 1000


@pytest.mark.parametrize("name", ["xor", "ba", "ba_sum"])
def test_loss_and_predict(name):
    p = make_problem(name)
    w = p.initial_weights(seed=3)
    assert not np.array_equal(w, p.initial_weights())
    e = 0.5 * ((p.predict(w) - p.Y) ** 2).sum()
    assert p.loss(w) == pytest.approx(e / p.n_examples if name == "ba" else e, rel=1e-12)
    W = p.unpack(w)
    assert [m.shape for m in W] == list(zip(p.sizes[:-1], p.sizes[1:]))


# ---- the paper's conventions and data -----------------------------------------

def test_steps_conventions_and_local_index():
    xor = lp.steps.XOR()
    x = lp.steps.solve(xor, None, 64, cycle="two", solver="solver2", conventions="xbraid",
                       **solve_kwargs())
    p = lp.steps.solve(xor, None, 64, cycle="two", solver="solver2", **solve_kwargs())
    assert p.settings["mapping"] == "local" and p.settings["conventions"] == "package"
    # two levels: the same start and residuals; XBraid counts the start and the
    # cycle after the last residual
    assert x.residuals == p.residuals and x.iterations == p.iterations + 2
    assert x.paper_speedup == pytest.approx(64 / (x.iterations * 17))
    assert x.potential_speedup == pytest.approx(
        lp.steps.potential_speedup(64, x.iterations, cycle="two"))
    assert lp.steps.solve(xor, None, 64, cfactor=4, **solve_kwargs()).paper_speedup is None


def test_paper_binary_addition():
    p = lp.steps.BinaryAddition(paper=True)
    assert p.n_examples == 500 and p.unit == 1 and p.n_units == 500
    assert p.reduction == "sum" and p.batch_size == 10 and p.n_weights == 12032
    weights = 2.0 ** np.arange(11, -1, -1)  # most significant bit first
    a, b, y = p.X[:, :12] @ weights, p.X[:, 12:] @ weights, p.Y @ weights
    assert a.max() < 2 ** 11 and b.max() < 2 ** 11 and np.array_equal(a + b, y)
    # one RandomState(1) stream: the pairs, then the weights 0.2 N(0, 1) - 0.1
    rs = np.random.RandomState(1)
    assert np.array_equal(a, (rs.rand(500) * 2 ** 11).astype(int))
    rs.rand(500)
    np.testing.assert_array_equal(p.initial_weights()[:24 * 128],
                                  (rs.randn(24, 128) * 0.2 - 0.1).ravel())
    small = lp.steps.BinaryAddition(paper=True, examples=50)
    np.testing.assert_array_equal(small.X, p.X[:50])
    np.testing.assert_array_equal(small.initial_weights(), p.initial_weights())
    # summed loss: one step on one example is W -= alpha x^T delta
    w1 = p.step(0, 3, p.initial_weights(), solver="solver2")
    W = p.unpack(p.initial_weights())
    acts = [p.X[3:4]]
    for Wl in W:
        acts.append(1 / (1 + np.exp(-acts[-1] @ Wl)))
    delta = (acts[-1] - p.Y[3:4]) * acts[-1] * (1 - acts[-1])
    grads = []
    for l in range(len(W) - 1, -1, -1):
        grads.insert(0, acts[l].T @ delta)
        delta = (delta @ W[l].T) * acts[l] * (1 - acts[l])
    np.testing.assert_allclose(w1, np.concatenate([(Wl - 0.025 * g).ravel()
                                                   for Wl, g in zip(W, grads)]), rtol=1e-12)
    with pytest.raises(ValueError, match="paper=True"):
        lp.steps.BinaryAddition(paper=True, reduction="mean")

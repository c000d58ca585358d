"""Time per optimizer iteration against depth, serial and MGRIT, with a scaling model.

For N in --layers (32 ... 1024), width 8, a peaks batch: L-BFGS training with
serial propagation (across the ranks when there are several) and one-shot
MGRIT (c = 4, FCF, d = 2 cycles), timed interleaved by bench/harness.py
(seconds per iteration: min and median over --rounds runs of --iterations
steps each, the max over ranks).

The model: from the measured cost of one layer step t_step (serial sweep / N
on one rank) and, on several ranks, of one state message t_msg (ping-pong
between ranks 0 and 1), one MGRIT iteration at P ranks costs

    evaluations x 2 d x [t_step max(steps per cycle / P, critical path) + m t_msg]

(forward and adjoint cycles; steps per cycle counted by the engine on one
rank; critical path = lp.mgrit.critical_path; m = messages on the critical
path, one per sweep and level: levels x (relaxation sweeps + 2)), against one
serial iteration on one rank (its evaluations per iteration x a measured
forward+backward). Rows with kind "model" give that speedup at P = 16 ... 1024
(P <= N / c). The model leaves out the gradient pass (work / P) and
the optimizer's vector operations.

    python bench/depth.py [--layers 32 64 ... 1024]
    mpiexec -n 2 python -m mpi4py bench/depth.py      (measures t_msg; model rows)
"""

import argparse
import time

import numpy as np

from _common import emit as _emit
from harness import Variant, compare

import layerparallel as lp
from layerparallel.mgrit import critical_path

try:
    from mpi4py import MPI
    COMM = MPI.COMM_WORLD if MPI.COMM_WORLD.Get_size() > 1 else None
except ImportError:
    COMM = None


def emit(**row):
    if COMM is None or COMM.Get_rank() == 0:
        _emit(**row)


def allmax(x):
    return COMM.allreduce(x, op=MPI.MAX) if COMM is not None else x


def message_seconds(size, reps=50):
    """One message of `size` doubles between ranks 0 and 1 (half a ping-pong)."""
    if COMM is None:
        return None
    buf = np.zeros(size)
    r = COMM.Get_rank()
    COMM.Barrier()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        if r == 0:
            COMM.Send(buf, dest=1)
            COMM.Recv(buf, source=1)
        elif r == 1:
            COMM.Recv(buf, source=0)
            COMM.Send(buf, dest=0)
        times.append((time.perf_counter() - t0) / 2)
    return COMM.bcast(float(np.median(times)) if r == 0 else None, root=0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, nargs="+", default=[32, 64, 128, 256, 512, 1024])
    ap.add_argument("--width", type=int, default=8)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--iterations", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--cycles", type=int, default=2)
    ap.add_argument("--ranks-model", type=int, nargs="+", default=[16, 64, 256, 1024])
    args = ap.parse_args()
    nranks = COMM.Get_size() if COMM is not None else 1
    X, Y = lp.datasets.peaks(n=args.batch, seed=0)
    w, c, d, its = args.width, 4, args.cycles, args.iterations
    t_msg = message_seconds(args.batch * w)
    for N in args.layers:
        info = {}

        def runner(mode):
            def run():
                net = lp.ODEResNet(2, w, N, 5, T=5.0, gamma_tik=1e-5, comm=COMM)
                theta = net.init("uniform", seed=0, magnitude=1e-6, outer="glorot")
                kw = {} if mode == "serial" else dict(
                    solver=lp.MGRIT(cfactor=c, relax="FCF", comm=COMM), one_shot=d)
                h = lp.train(net, theta, X, Y, lp.optim.LBFGS(memory=5), iterations=its, **kw)
                info[mode] = h
            return run

        rows = compare([Variant("serial", runner("serial")), Variant("mgrit", runner("mgrit"))],
                       rounds=args.rounds, min_seconds=0.0, warmup=0, calls=1,
                       reduce=allmax if COMM is not None else None)
        res = {r["name"]: r for r in rows}
        for mode, r in res.items():
            evals = sum(info[mode]["evaluations"]) / its
            emit(bench="depth", kind="measured", mode=mode, nranks=nranks, n_layers=N, width=w,
                 batch=args.batch, iterations=its, per_iteration_min_s=r["min_s"] / its,
                 per_iteration_median_s=r["median_s"] / its, evaluations_per_iteration=evals,
                 one_shot_cycles=d if mode == "mgrit" else None,
                 threads=lp.get_num_threads(), processor=r["processor"],
                 load_avg=r["load_avg_before"])
        if t_msg is None:
            continue
        # The model's inputs at this depth: one step, the engine's steps per cycle.
        local = lp.ODEResNet(2, w, N, 5, T=5.0)
        th = local.init("box", seed=0)
        t0 = time.perf_counter()
        for _ in range(3):
            local.forward(th, X)
        t_step = allmax((time.perf_counter() - t0) / 3 / N)
        one = lp.MGRIT(cfactor=c, relax="FCF", tol=None, max_iter=1, warm_start=False)
        _, cyc = local.forward(th, X, solver=one)
        steps_cycle = cyc["steps"]  # one rank: all of them
        path, levels = critical_path(N, cfactor=c, relax="FCF")
        msgs = levels * (2 + 2)  # FCF: two sweeps, plus restriction and correction
        t0 = time.perf_counter()
        for _ in range(3):
            local.loss_and_grad(th, X, Y)
        t_fb = allmax((time.perf_counter() - t0) / 3)
        # One serial iteration on one rank: its evaluations x one forward+backward.
        serial_it = sum(info["serial"]["evaluations"]) / its * t_fb
        evals = sum(info["mgrit"]["evaluations"]) / its
        for P in args.ranks_model:
            if P > N // c:
                continue
            cycle = t_step * max(steps_cycle / P, path) + msgs * t_msg
            mg_it = evals * 2 * d * cycle
            emit(bench="depth", kind="model", n_layers=N, width=w, batch=args.batch, P=P,
                 t_step_s=t_step, t_msg_s=t_msg, steps_per_cycle=steps_cycle,
                 critical_path=path, mgrit_iteration_s=mg_it,
                 serial_iteration_1rank_s=serial_it, speedup=serial_it / mg_it)


if __name__ == "__main__":
    main()

"""What MGRIT costs against serial propagation, on one rank or several.

For N layers and width w (batch B), in the same run:
  - t_step: one layer step, from a serial forward sweep (N steps) / N;
  - one V-cycle (FCF, c=4) of the forward solve: its time, the step
    applications the engine counted (busiest rank), and
    overhead = t_cycle / (steps x t_step)  -- the engine's cost above its kernels;
  - a converged forward solve (rtol 1e-8): time, iterations, time / serial sweep;
  - the modelled critical-path speedup at P = N/c ranks (lp.mgrit.potential_speedup).
Plus the torchbraid reference configuration (width 8, 32 layers, batch 5000,
3 levels, 2 iterations, forward + backward), in float64 and float32
(dtype="float32"), all four timed interleaved.

    python bench/mgrit_cost.py [--layers 256 1024 4096] [--widths 8 64] [--batch 100]
    mpiexec -n 2 python -m mpi4py bench/mgrit_cost.py ...   (communication cost)
The serial sweep, the cycle and the converged solve are timed interleaved by
bench/harness.py (under MPI a fixed number of calls per turn, each the max
over the ranks); rows carry min and median, the processor and the load average.
Rows: JSON on stdout, one per (N, width) and kind.
"""

import argparse

import numpy as np

from _common import emit as _emit, log as _log
from harness import Variant, compare

import layerparallel as lp
from layerparallel.mgrit import potential_speedup

try:
    from mpi4py import MPI
    COMM = MPI.COMM_WORLD if MPI.COMM_WORLD.Get_size() > 1 else None
except ImportError:
    COMM = None


def _rank0():
    return COMM is None or COMM.Get_rank() == 0


def emit(**row):
    if _rank0():
        _emit(**row)


def log(*args):
    if _rank0():
        _log(*args)


def allmax(x):
    return COMM.allreduce(x, op=MPI.MAX) if COMM is not None else x


def timed_together(named, min_seconds, rounds=3):
    """{name: harness row} for [(name, fn)], interleaved; MPI-safe."""
    if COMM is not None:
        COMM.Barrier()
    rows = compare([Variant(n, f) for n, f in named], rounds=rounds,
                   min_seconds=min_seconds * len(named),
                   calls=3 if COMM is not None else None,
                   reduce=allmax if COMM is not None else None)
    return {r["name"]: r for r in rows}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, nargs="+", default=[256, 1024, 4096])
    ap.add_argument("--widths", type=int, nargs="+", default=[8, 64])
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--cfactor", type=int, default=4)
    ap.add_argument("--min-seconds", type=float, default=0.5)
    ap.add_argument("--skip-reference", action="store_true")
    args = ap.parse_args()
    nranks = COMM.Get_size() if COMM is not None else 1
    threads = lp.get_num_threads()
    X, Y = lp.datasets.peaks(n=args.batch, seed=0)
    c = args.cfactor
    for w in args.widths:
        for N in args.layers:
            common = dict(bench="mgrit_cost", nranks=nranks, threads=threads, n_layers=N,
                          width=w, batch=args.batch, cfactor=c)
            # The step's cost: a serial sweep on this rank alone (same threads).
            local = lp.ODEResNet(2, w, N, 5, T=5.0, activation="smoothrelu")
            theta_local = local.init("box", seed=0)
            net = lp.ODEResNet(2, w, N, 5, T=5.0, activation="smoothrelu", comm=COMM)
            theta = net.init("box", seed=0)
            one = lp.MGRIT(cfactor=c, tol=None, max_iter=1, warm_start=False, comm=COMM)
            conv = lp.MGRIT(cfactor=c, tol=None, rtol=1e-8, max_iter=100, warm_start=False,
                            comm=COMM)
            info, cinfo = {}, {}
            rows = timed_together(
                [("serial", lambda: local.forward(theta_local, X)),
                 ("cycle", lambda: info.update(net.forward(theta, X, solver=one)[1])),
                 ("converged", lambda: cinfo.update(net.forward(theta, X, solver=conv)[1]))],
                args.min_seconds)
            t_serial, t_cycle, t_conv = (rows[k]["median_s"] for k in
                                         ("serial", "cycle", "converged"))
            t_step = t_serial / N
            where = dict(processor=rows["cycle"]["processor"],
                         load_avg=rows["cycle"]["load_avg_before"])
            steps = allmax(info["steps"])
            emit(kind="v_cycle", median_s=t_cycle, min_s=rows["cycle"]["min_s"],
                 calls=rows["cycle"]["calls"], steps=steps, t_step_s=t_step,
                 overhead=t_cycle / (steps * t_step), ratio_vs_serial=t_cycle / t_serial,
                 **where, **common)
            its = cinfo["iterations"]
            emit(kind="converged", median_s=t_conv, min_s=rows["converged"]["min_s"],
                 calls=rows["converged"]["calls"], iterations=its,
                 steps=allmax(cinfo["steps"]), ratio_vs_serial=t_conv / t_serial,
                 serial_s=t_serial, modelled_speedup_at_P=potential_speedup(N, its, cfactor=c),
                 P_model=N // c, **where, **common)
            log(f"N={N} w={w}: cycle {t_cycle * 1e3:.2f} ms = {t_cycle / (steps * t_step):.3f}"
                f" x ({steps} steps x {t_step * 1e6:.1f} us); converged {its} its "
                f"{t_conv / t_serial:.1f}x serial")
    if args.skip_reference:
        return
    # torchbraid's configuration: 0.10-0.12 s for MGRIT forward+backward on this machine class.
    Xr, Yr = lp.datasets.peaks(n=5000, seed=0)
    named = []
    for dt in ("float64", "float32"):
        net = lp.ODEResNet(2, 8, 32, 5, T=5.0, activation="relu", comm=COMM, dtype=dt)
        theta = net.init("he", seed=0)
        theta.data[...] *= 0.5
        Xd, Yd = Xr.astype(dt), Yr.astype(dt)  # converted once, not in every call
        mg = lp.MGRIT(cfactor=4, max_levels=3, tol=None, max_iter=2, comm=COMM)
        sfx = "" if dt == "float64" else "_" + dt
        named += [("mgrit" + sfx, lambda net=net, theta=theta, Xd=Xd, Yd=Yd, mg=mg:
                   net.loss_and_grad(theta, Xd, Yd, solver=mg)),
                  ("serial" + sfx, lambda net=net, theta=theta, Xd=Xd, Yd=Yd:
                   net.loss_and_grad(theta, Xd, Yd))]
    rows = timed_together(named, args.min_seconds)
    for dt in ("float64", "float32"):
        sfx = "" if dt == "float64" else "_" + dt
        t_mg, t_serial = rows["mgrit" + sfx]["median_s"], rows["serial" + sfx]["median_s"]
        emit(bench="mgrit_cost", kind="torchbraid_config", dtype=dt, nranks=nranks,
             threads=threads, n_layers=32, width=8, batch=5000, levels=3, iterations=2,
             median_s=t_mg, min_s=rows["mgrit" + sfx]["min_s"],
             calls=rows["mgrit" + sfx]["calls"], serial_fwd_bwd_s=t_serial,
             serial_fwd_bwd_min_s=rows["serial" + sfx]["min_s"], torchbraid_reference_s=0.11,
             speedup_vs_torchbraid=0.11 / t_mg, processor=rows["mgrit" + sfx]["processor"],
             load_avg=rows["mgrit" + sfx]["load_avg_before"])


if __name__ == "__main__":
    main()

"""Strong scaling of a layer-parallel forward + backward: 1, 2, 4, 8 ranks.

Launches `mpiexec -n K python -m mpi4py bench/mgrit_scaling.py --child` for each
K (one core thread per rank); each run times serial propagation across the
ranks and a converged MGRIT forward+adjoint+gradient (rtol 1e-8) of the same
net. Rows with K above the machine's cores are marked oversubscribed.

    python bench/mgrit_scaling.py [--ranks 1 2 4 8] [--layers 1024] [--width 8] [--batch 100]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys

from _common import emit, log, median_time


def child(args):
    from mpi4py import MPI

    import layerparallel as lp

    comm = MPI.COMM_WORLD
    X, Y = lp.datasets.peaks(n=args.batch, seed=0)
    net = lp.ODEResNet(2, args.width, args.layers, 5, T=5.0, activation="smoothrelu",
                       comm=comm)
    theta = net.init("box", seed=0)
    mg = lp.MGRIT(cfactor=args.cfactor, tol=None, rtol=1e-8, warm_start=False, comm=comm)
    info = {}

    def mgrit():
        comm.Barrier()
        info.update(net.loss_and_grad(theta, X, Y, solver=mg)[2])

    def serial():
        comm.Barrier()
        net.loss_and_grad(theta, X, Y)

    t_mg, _ = median_time(mgrit, min_seconds=args.min_seconds, warmup=1)
    t_serial, _ = median_time(serial, min_seconds=args.min_seconds, warmup=1)
    t_mg = comm.allreduce(t_mg, op=MPI.MAX)
    t_serial = comm.allreduce(t_serial, op=MPI.MAX)
    if comm.rank == 0:
        print(json.dumps(dict(mgrit_s=t_mg, serial_s=t_serial,
                              iterations=info["forward"]["iterations"])), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--layers", type=int, default=1024)
    ap.add_argument("--width", type=int, default=8)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--cfactor", type=int, default=4)
    ap.add_argument("--min-seconds", type=float, default=1.0)
    ap.add_argument("--child", action="store_true")
    args = ap.parse_args()
    if args.child:
        return child(args)
    mpiexec = shutil.which("mpiexec") or os.path.join(os.path.dirname(sys.executable), "mpiexec")
    cores = os.cpu_count()
    base = None
    for k in args.ranks:
        cmd = [mpiexec, "-n", str(k), sys.executable, "-m", "mpi4py", __file__, "--child",
               "--layers", str(args.layers), "--width", str(args.width), "--batch",
               str(args.batch), "--cfactor", str(args.cfactor), "--min-seconds",
               str(args.min_seconds)]
        env = dict(os.environ, OMP_NUM_THREADS="1")
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        base = base or r
        emit(bench="mgrit_scaling", nranks=k, threads=1, oversubscribed=k > cores,
             n_layers=args.layers, width=args.width, batch=args.batch, cfactor=args.cfactor,
             mgrit_s=r["mgrit_s"], serial_s=r["serial_s"], iterations=r["iterations"],
             mgrit_speedup_vs_1rank=base["mgrit_s"] / r["mgrit_s"],
             mgrit_vs_serial_same_ranks=r["mgrit_s"] / r["serial_s"],
             mgrit_vs_serial_1rank=r["mgrit_s"] / base["serial_s"])
        log(f"K={k}{' (oversubscribed)' if k > cores else ''}: MGRIT {r['mgrit_s']:.4f} s, "
            f"serial across ranks {r['serial_s']:.4f} s")


if __name__ == "__main__":
    main()

"""Run under mpiexec: checkpointed one-shot training that may be killed.

    mpiexec -n K python -m mpi4py tests/mpi/kill_train.py OUTDIR CKDIR ITERATIONS [IT:RANK]

Resumes from CKDIR when it holds a committed checkpoint. Each rank writes its
pid to OUTDIR/pid.rank<r> and, after every step, rank 0 the step number to
OUTDIR/progress (for a killer to aim at). With IT:RANK, rank RANK kills
itself (SIGKILL) just before writing its checkpoint file of iteration IT:
the other ranks may have written theirs, so the newest set is incomplete.
At the end rank 0 saves the whole parameter vector to OUTDIR/theta.npy.
"""

import os
import signal
import sys

import numpy as np
from mpi4py import MPI

import layerparallel as lp
from layerparallel import checkpoint as ckpt


def main():
    outdir, ckdir, iterations = sys.argv[1], sys.argv[2], int(sys.argv[3])
    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()
    with open(os.path.join(outdir, f"pid.rank{rank}"), "w") as f:
        f.write(str(os.getpid()))
    if len(sys.argv) > 4:
        die_at, die_rank = map(int, sys.argv[4].split(":"))
        write = ckpt.write_atomic

        def dying_write(path, *args, **kw):
            if rank == die_rank and path.endswith(f"checkpoint.{die_at}.rank{rank}.npz"):
                os.kill(os.getpid(), signal.SIGKILL)
            return write(path, *args, **kw)

        ckpt.write_atomic = dying_write

    X, Y = lp.datasets.peaks(n=200, seed=4)
    net = lp.ODEResNet(2, 6, 48, 5, T=4.0, comm=comm)
    theta = net.init("box", seed=0)
    solver = lp.MGRIT(cfactor=4, comm=comm)
    resume = os.path.exists(os.path.join(ckdir, ckpt.MANIFEST))

    def progress(it, record):
        if rank == 0:
            with open(os.path.join(outdir, "progress"), "w") as f:
                f.write(str(it))

    lp.train(net, theta, X, Y, lp.optim.LBFGS(), iterations=iterations, solver=solver,
             one_shot=1, batch_size=50, seed=3, checkpoint=ckdir, checkpoint_every=1,
             resume=resume, callback=progress)
    full = theta.gather()
    if rank == 0:
        np.save(os.path.join(outdir, "theta.npy"), full)


if __name__ == "__main__":
    main()

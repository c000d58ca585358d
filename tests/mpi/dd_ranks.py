"""Run under mpiexec (or alone): training on a process grid; rank 0 saves the weights.

    mpiexec -n K python -m mpi4py tests/mpi/dd_ranks.py OUT.npz METHOD LAYERS DATA [PARTS]

METHOD: serial | mgrit (L-BFGS, full batch), sgd (mini-batches), pd
(ParameterDecomposition, PARTS subdomains), sapts (DataDecomposition, PARTS
micro-batches). LAYERS x DATA must be the rank count.
"""

import sys

import numpy as np
from mpi4py import MPI

import layerparallel as lp


def run(method, layers, data, parts, checkpoint=None, iterations=6, resume=False):
    grid = lp.ProcessGrid(MPI.COMM_WORLD, layers=layers, data=data)
    X, Y = lp.datasets.peaks(n=120, seed=0)
    net = grid.network(2, 5, 12, 5, T=3.0, activation="tanh", gamma_tik=1e-4, gamma_ddt=1e-3)
    theta = net.init("glorot", seed=0)
    kw = {}
    if method == "serial":
        opt = lp.optim.LBFGS(memory=4)
    elif method == "mgrit":
        opt = lp.optim.LBFGS(memory=4)
        kw["solver"] = grid.mgrit(cfactor=2, tol=1e-12, max_iter=60)
    elif method == "sgd":
        opt = lp.optim.SGD(lr=0.05)
        kw["batch_size"] = 40
    elif method == "pd":
        opt = lp.dd.ParameterDecomposition("adam", 3, subdomains=parts, local_lr=0.01)
    elif method == "sapts":
        opt = lp.dd.DataDecomposition(2, micro_batches=parts, radius=0.2)
        kw["batch_size"] = 60
    else:
        raise SystemExit(f"unknown method {method}")
    h = lp.train(net, theta, X, Y, opt, iterations=iterations, checkpoint=checkpoint,
                 checkpoint_every=3, resume=resume, **kw)
    return theta.gather(), np.array(h["loss"])


def main():
    out, method, layers, data = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    parts = int(sys.argv[5]) if len(sys.argv) > 5 and sys.argv[5] != "-" else None
    ckpt = sys.argv[6] if len(sys.argv) > 6 else None
    theta, loss = run(method, layers, data, parts, ckpt)
    extra = {}
    if ckpt is not None:  # resume from the checkpoint of step 3 (rewrite it first)
        run(method, layers, data, parts, ckpt + "_b", iterations=3)
        theta2, loss2 = run(method, layers, data, parts, ckpt + "_b", resume=True)
        extra = dict(theta_resumed=theta2, loss_resumed=loss2)
    if MPI.COMM_WORLD.rank == 0:
        np.savez(out, theta=theta, loss=loss, **extra)


if __name__ == "__main__":
    main()

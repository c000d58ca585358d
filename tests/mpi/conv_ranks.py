"""Run under mpiexec: a distributed conv ODE-ResNet's loss, gradient and
final states (serial across the ranks and by MGRIT), and a short nested
one-shot training run; rank 0 saves them.

    mpiexec -n K python -m mpi4py tests/mpi/conv_ranks.py OUT.npz
"""

import sys

import numpy as np
from mpi4py import MPI

import layerparallel as lp


def setup(comm=None):
    rng = np.random.default_rng(3)
    X = rng.uniform(0, 1, size=(7, 2, 5, 6))
    Y = np.eye(3)[rng.integers(0, 3, size=7)]
    net = lp.ConvODEResNet((2, 5, 6), 3, 13, 3, T=2.0, activation="tanh", gamma_tik=1e-3,
                           gamma_ddt=1e-2, gamma_out=1e-3, comm=comm)
    return net, net.init("glorot", seed=2), X, Y


def main():
    comm = MPI.COMM_WORLD
    net, theta, X, Y = setup(comm)
    J_serial, g_serial = net.loss_and_grad(theta, X, Y)
    mg = lp.MGRIT(cfactor=2, tol=1e-11, max_iter=100, comm=comm, warm_start=False)
    J, g, info = net.loss_and_grad(theta, X, Y, solver=mg)
    U, _ = net.forward(theta, X, solver=mg)
    nested = net.with_layers(12)
    _, th, hist = lp.nested_train(nested, X, Y, lp.optim.create("adam", lr=0.01), levels=2,
                                  schedule=(3, 3), magnitude=0.1, seed=1,
                                  solver=lp.MGRIT(cfactor=2, comm=comm), one_shot=1)
    full_serial, full, nested_theta = g_serial.gather(), g.gather(), th.gather()
    acc = net.accuracy(theta, X, Y)
    if comm.rank == 0:
        np.savez(sys.argv[1], J_serial=J_serial, J=J, g_serial=full_serial, g=full, U=U,
                 its=info["forward"]["iterations"], nested=nested_theta,
                 nested_loss=np.array(hist["loss"]), acc=acc)


if __name__ == "__main__":
    main()

"""Run under mpiexec: model files and the torch block across rank counts.

    mpiexec -n K python -m mpi4py tests/mpi/modelfile_ranks.py save MODEL OUT.npz
    mpiexec -n K python -m mpi4py tests/mpi/modelfile_ranks.py load|load_block MODEL OUT.npz

save (2 ranks): train a distributed net for a few steps, lp.save it, and
record its predictions; also save a data-parallel net of a 1 x 2 grid, and a
distributed conv net (MODEL.conv.npz). load: lp.load over the K ranks, record
predictions and the gathered parameters (of the conv net too); load_block also the torch block's (MGRIT) output and
gradients at those parameters and to_module's predictions. Rank 0 writes OUT.
"""

import sys

import numpy as np
from mpi4py import MPI

import layerparallel as lp


def data():
    return lp.datasets.peaks(n=120, seed=4)


def images():
    return np.random.default_rng(5).uniform(size=(9, 2, 5, 4))


def main():
    mode, model, out = sys.argv[1:4]
    comm = MPI.COMM_WORLD
    X, Y = data()
    result = {}
    if mode == "save":
        net = lp.ODEResNet(2, 5, 12, 5, T=3.0, activation="tanh", gamma_tik=1e-3, comm=comm)
        theta = net.init("box", seed=1)
        lp.train(net, theta, X, Y, lp.optim.Adam(lr=0.01), iterations=5)
        lp.save(model, net, theta)
        # a 1 x 2 process grid (both ranks hold all layers, the batch is split):
        # its data-parallel network is saved once, as its inner network
        grid_net = lp.ProcessGrid(comm, layers=1, data=2).network(2, 5, 12, 5, T=3.0)
        lp.save(model + ".grid.npz", grid_net, grid_net.init("glorot", seed=2))
        conv = lp.ConvODEResNet((2, 5, 4), 3, 6, 4, T=1.0, pooling="flatten", comm=comm)
        conv_theta = conv.init("he", seed=3)
        lp.save(model + ".conv.npz", conv, conv_theta)
    else:
        net, theta = lp.load(model, comm=comm)
        conv, conv_theta = lp.load(model + ".conv.npz", comm=comm)
    result.update(conv_predictions=conv.predict(conv_theta, images()),
                  conv_theta=conv_theta.gather())
    if mode == "load_block":
        import torch

        mg = lp.MGRIT(cfactor=2, tol=1e-13, max_iter=60, comm=comm)
        block = lp.torch.ODEResNetBlock(net, solver=mg, theta=theta)
        y = torch.from_numpy(X).requires_grad_(True)
        G = torch.from_numpy(np.random.default_rng(0).standard_normal((X.shape[0], net.width)))
        u = block(y)
        (u * G).sum().backward()
        grad = net.new_params()
        for name in block._names:
            getattr(grad, name)[...] = getattr(block, name).grad.numpy()
        result.update(block_u=u.detach().numpy(), block_dX=y.grad.numpy(),
                      block_grad=grad.gather())
        # to_module gathers the whole net on every rank; from_module distributes it again
        module = lp.torch.to_module(net, theta)
        result["module_predictions"] = module(torch.from_numpy(X)).detach().numpy()
        _, back = lp.torch.from_module(module, comm=comm)
        assert np.array_equal(back.data, theta.data)
    result.update(predictions=net.predict(theta, X), theta=theta.gather())
    if comm.rank == 0:
        np.savez(out, **result)


if __name__ == "__main__":
    main()

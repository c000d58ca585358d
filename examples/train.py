"""Layer-parallel training of an ODE-ResNet on the peaks data.

The same script runs on one rank and on many:

    python examples/train.py
    mpiexec -n 4 python examples/train.py

With K ranks, rank r holds the residual layers [N r/K, N (r+1)/K) and MGRIT
solves the forward and the adjoint propagation across the ranks; every rank
passes the same data and sees the same numbers. Only rank 0 prints.
"""

import layerparallel as lp
from mpi4py import MPI

comm = MPI.COMM_WORLD
rank = comm.Get_rank()

X, Y, Xv, Yv = lp.datasets.train_validation_split(*lp.datasets.peaks(n=500, seed=0), 0.2,
                                                   seed=0)
net = lp.ODEResNet(n_in=2, width=8, n_layers=64, n_out=5, T=5.0, activation="smoothrelu",
                   gamma_tik=1e-5, comm=comm)          # this rank's block of layers
theta = net.init("box", seed=0)                        # this rank's layers, same at any rank count
mg = lp.MGRIT(cfactor=4, rtol=1e-8, comm=comm)

# One gradient by MGRIT: the same numbers on every rank.
loss, grad, info = net.loss_and_grad(theta, X, Y, solver=mg)
full = grad.gather()                                   # the whole gradient vector, on every rank
norm = grad.norm()                                     # collective: every rank calls it
if rank == 0:
    print(f"{comm.Get_size()} rank(s), {net.n_layers} layers, {full.size} parameters")
    print(f"loss {loss:.6f}, |grad| {norm:.6e}, MGRIT cycles: forward "
          f"{info['forward']['iterations']}, adjoint {info['adjoint']['iterations']}")

# One-shot training: two warm-started MGRIT cycles per solve, then the L-BFGS step.
hist = lp.train(net, theta, X, Y, optimizer="lbfgs", iterations=8, solver=mg, one_shot=2,
                validation=(Xv, Yv), validate_every=4)
if rank == 0:
    print(f"after {len(hist['loss'])} steps: loss {hist['loss'][-1]:.4f}, validation accuracy "
          f"{max(hist['val_accuracy']):.3f}")

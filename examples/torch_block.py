"""A torch model whose middle is the layer-parallel ODE-ResNet block.

    python examples/torch_block.py              # one rank, serial propagation
    mpiexec -n 2 python examples/torch_block.py # the layers shared by 2 ranks, MGRIT

torch opening (Linear + tanh) -> lp.torch.ODEResNetBlock (32 residual layers
of width 8 in the compiled core) -> torch head (Linear), trained with
torch.optim.Adam on the peaks data. Every rank runs the same torch model on
the same data; each holds and updates only its own residual layers.
"""

import torch

import layerparallel as lp

try:
    from mpi4py import MPI

    comm = MPI.COMM_WORLD if MPI.COMM_WORLD.Get_size() > 1 else None
except ImportError:
    comm = None

torch.manual_seed(0)
X, Y = lp.datasets.peaks(n=500, seed=0)
x, labels = torch.from_numpy(X), torch.from_numpy(Y.argmax(axis=1))

# The block: padding opening (the identity at n_in = width), 32 residual layers.
net = lp.ODEResNet(n_in=8, width=8, n_layers=32, n_out=1, T=4.0, activation="tanh",
                   opening="padding", comm=comm)
solver = lp.MGRIT(cfactor=4, rtol=1e-8, comm=comm) if comm is not None else None
model = torch.nn.Sequential(
    torch.nn.Linear(2, 8, dtype=torch.float64), torch.nn.Tanh(),
    lp.torch.ODEResNetBlock(net, solver=solver, theta=net.init("box", seed=0, magnitude=0.5)),
    torch.nn.Linear(8, 5, dtype=torch.float64),
)
opt = torch.optim.Adam(model.parameters(), lr=0.01)
for step in range(41):
    opt.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(x), labels)
    loss.backward()
    opt.step()
    if step % 20 == 0:
        with torch.no_grad():  # every rank: the block's forward is a collective solve
            acc = (model(x).argmax(dim=1) == labels).double().mean().item()
        if comm is None or comm.rank == 0:
            print(f"step {step:3d}  loss {loss.item():.4f}  accuracy {acc:.3f}")

"""Domain-decomposition study: parameter and data decomposition next to L-BFGS,
one-shot MGRIT, SGD and data parallelism, on the same network, data and ranks.

Each part runs under mpiexec on K ranks (oversubscribed on a small machine:
then wall times measure the method's work plus MPI on shared cores, not a
speedup) and appends JSON rows (one per method and iteration) to --out;
``plot`` draws the figures and prints the table of part (c).

    mpiexec -n K python bench/dd_study.py a --out rows.jsonl   # K = 1, 2, 3, 6
    mpiexec -n K python bench/dd_study.py b --out rows.jsonl   # K = 1, 2, 4
    mpiexec -n K python bench/dd_study.py c --out rows.jsonl   # K = 2, 4
    python bench/dd_study.py plot --out rows.jsonl --figures bench/figures

(a) the poster's setting: a residual network of 6 layers x 40 neurons (tanh) on
    a smooth regression problem (sin 2 pi x), K subdomains (one per rank), local
    L-BFGS with 1, 5, 10 local steps, against plain L-BFGS and one-shot MGRIT
    (2 cycles, c = 2) on the same K layer ranks.
(b) digits classification on a 1 x K grid: SAPTS with mini-batch 100 and
    micro-batches of 100/K (with and without the first-order consistency
    term), against SGD with learning rate 0.01 (one rank) and data-parallel
    SGD (the same on K ranks).
(c) digits on K ranks: layer-parallel MGRIT (one-shot, K x 1), parameter DD
    (K x 1), data DD (1 x K) and data parallelism (L-BFGS on mini-batches,
    1 x K): time per epoch, epochs to the target accuracy and the modelled
    communication volume per epoch.
"""

import argparse
import json
import os
import sys

import numpy as np


def world():
    from mpi4py import MPI

    return MPI.COMM_WORLD


def emit_rows(path, rows, comm):
    if comm.rank == 0:
        with open(path, "a", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")


def history_rows(part, method, K, grid, hist, epoch_iterations=None, **extra):
    rows = []
    for rec in hist.records():
        r = {"part": part, "method": method, "ranks": K, "grid": grid,
             "iteration": rec["iteration"], "loss": rec["loss"], "wall_time": rec["wall_time"],
             "val_accuracy": rec.get("val_accuracy"), "val_loss": rec.get("val_loss")}
        if epoch_iterations:
            r["epoch"] = rec["iteration"] / epoch_iterations
        r.update(extra)
        rows.append(r)
    return rows


# ---------------------------------------------------------------- (a)
def part_a(args, lp, comm):
    K = comm.Get_size()
    X, Y = lp.datasets.sine(n=400, seed=0)
    X, Y, Xv, Yv = lp.datasets.train_validation_split(X, Y, 0.25, seed=0)
    grid = lp.ProcessGrid(comm if K > 1 else None, layers=K, data=1)

    def fresh():
        net = grid.network(1, 40, 6, 1, T=1.0, activation="tanh", head="regression",
                           gamma_tik=1e-6)
        return net, net.init("glorot", seed=0)

    runs = [("lbfgs", lp.optim.LBFGS(memory=5), {}),
            ("mgrit one-shot", lp.optim.LBFGS(memory=5),
             {"solver": grid.mgrit(cfactor=2, min_coarse=1), "one_shot": 2})]
    for steps in (1, 5, 10):
        runs.append((f"dd-params {steps} local", lp.dd.ParameterDecomposition(
            "lbfgs", steps, memory=5), {}))
    rows = []
    for name, opt, kw in runs:
        net, theta = fresh()
        h = lp.train(net, theta, X, Y, opt, iterations=args.iterations, validation=(Xv, Yv),
                     validate_every=args.iterations, **kw)
        rows += history_rows("a", name, K, f"{K}x1", h, subdomains=K)
        if comm.rank == 0:
            print(f"(a) K={K} {name:22s} loss {h['loss'][0]:.3e} -> {h['loss'][-1]:.3e} "
                  f"in {h['wall_time'][-1]:.2f} s", flush=True)
    emit_rows(args.out, rows, comm)


# ---------------------------------------------------------------- (b), (c)
def digits(lp):
    X, Y = lp.datasets.digits(seed=0)
    return lp.datasets.train_validation_split(X, Y, 0.2, seed=0)


def digits_net(grid):
    return grid.network(64, 24, 8, 10, T=2.0, activation="tanh", opening="linear",
                        gamma_tik=1e-5)


def train_epochs(lp, grid, opt, data, epochs, batch, target=None, **kw):
    X, Y, Xv, Yv = data
    net = digits_net(grid)
    theta = net.init("glorot", seed=0)
    per_epoch = X.shape[0] // batch
    h = lp.train(net, theta, X, Y, opt, iterations=epochs * per_epoch, batch_size=batch,
                 validation=(Xv, Yv), validate_every=per_epoch, target_accuracy=target,
                 seed=0, **kw)
    return h, per_epoch, net


def part_b(args, lp, comm):
    K = comm.Get_size()
    data = digits(lp)
    rows = []
    data_grid = lp.ProcessGrid(comm if K > 1 else None, layers=1, data=K)
    runs = [("sapts", data_grid, lp.dd.DataDecomposition(3, radius=0.5, model="lsr1")),
            ("sapts without tau", data_grid,
             lp.dd.DataDecomposition(3, radius=0.5, model="lsr1", consistent=False))]
    runs.append(("sgd" if K == 1 else "data-parallel sgd", data_grid,
                 lp.optim.SGD(lr=0.01, momentum=0.0)))
    for name, grid, opt in runs:
        h, per_epoch, _ = train_epochs(lp, grid, opt, data, args.epochs, 100)
        rows += history_rows("b", name, K, f"1x{K}", h, per_epoch, micro_batch=100 // K)
        if comm.rank == 0:
            print(f"(b) K={K} {name:18s} accuracy {h.last('val_accuracy'):.3f} after "
                  f"{args.epochs} epochs, {h['wall_time'][-1]:.2f} s", flush=True)
    emit_rows(args.out, rows, comm)


def comm_model(method, K, net, batch, evaluations, one_shot=2, cfactor=2):
    """Bytes sent per optimizer iteration, all ranks together, from the messages
    each method makes (a model: the MPI traffic of the compiled engine is not
    counted by a profiler here). ``evaluations``: gradient evaluations per
    iteration including lp.train's own one.

    - data parallelism: one allreduce of the parameters per evaluation; a ring
      allreduce sends 2 (K-1)/K of the vector per rank, 2 (K-1) vectors in all;
    - SAPTS: lp.train's mini-batch evaluation and the combined update, one
      such allreduce each (scalars neglected);
    - serial propagation across K layer ranks: one state (batch x width) over
      each of the K-1 boundaries in the forward and one in the adjoint sweep;
    - parameter DD: those per global evaluation, one adjoint state per boundary
      for the subdomains, and the opening/head update broadcast;
    - one-shot MGRIT: per solve, cycles x levels x 4 boundary messages (F-, C-
      and F-relaxation and the coarse-grid correction), two solves per
      evaluation.
    """
    P = net.n_params * 8
    state = batch * net.width * 8 * (K - 1)
    if method == "data parallel":
        return 2 * (K - 1) * P * evaluations
    if method == "sapts":
        return 2 * (K - 1) * P * 2
    if method == "dd-params":
        outer = (net.n_params - net.n_local_layers * (net.width ** 2 + net.width)) * 8
        return evaluations * 2 * state + state + (K - 1) * outer
    levels, n = 1, net.n_layers
    while n // cfactor >= 1 and n > 1:
        n //= cfactor
        levels += 1
    return evaluations * 2 * one_shot * levels * 4 * state


def part_c(args, lp, comm):
    K = comm.Get_size()
    data = digits(lp)
    world_or_none = comm if K > 1 else None
    layer_grid = lp.ProcessGrid(world_or_none, layers=K, data=1)
    data_grid = lp.ProcessGrid(world_or_none, layers=1, data=K)
    runs = [
        ("mgrit one-shot", layer_grid, lp.optim.LBFGS(memory=5),
         {"solver": layer_grid.mgrit(cfactor=2, min_coarse=1), "one_shot": 2}),
        ("dd-params", layer_grid, lp.dd.ParameterDecomposition("adam", 5, local_lr=1e-2), {}),
        ("sapts", data_grid, lp.dd.DataDecomposition(3, radius=0.5), {}),
        ("data parallel", data_grid, lp.optim.LBFGS(memory=5), {}),
    ]
    rows = []
    for name, grid, opt, kw in runs:
        h, per_epoch, net = train_epochs(lp, grid, opt, data, args.epochs, 100,
                                         target=args.target, **kw)
        its = len(h["iteration"])
        # + 1: lp.train's own evaluation of each mini-batch
        evals = 1.0 + float(np.mean([e for e in h["evaluations"] if e is not None] or [0]))
        inner = net.inner if hasattr(net, "inner") else net
        reached = h.stopped_early
        rows.append({"part": "c", "method": name, "ranks": K,
                     "grid": f"{grid.layers}x{grid.data}",
                     "time_per_epoch": h["wall_time"][-1] / (its / per_epoch),
                     "epochs_to_target": its / per_epoch if reached else None,
                     "target": args.target, "final_accuracy": h.last("val_accuracy"),
                     "evaluations_per_iteration": evals,
                     "comm_bytes_per_epoch": per_epoch * comm_model(name, K, inner, 100,
                                                                    evals)})
        if comm.rank == 0:
            print(f"(c) K={K} {name:15s} {rows[-1]}", flush=True)
    emit_rows(args.out, rows, comm)


# ---------------------------------------------------------------- plots and table
def plot(args):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in open(args.out, encoding="utf-8")]
    os.makedirs(args.figures, exist_ok=True)
    a = [r for r in rows if r["part"] == "a"]
    if a:
        Ks = sorted({r["ranks"] for r in a})
        fig, axes = plt.subplots(2, len(Ks), figsize=(4 * len(Ks), 6.5), squeeze=False)
        for j, K in enumerate(Ks):
            for name in dict.fromkeys(r["method"] for r in a if r["ranks"] == K):
                rs = [r for r in a if r["ranks"] == K and r["method"] == name]
                axes[0, j].semilogy([r["iteration"] for r in rs], [r["loss"] for r in rs],
                                    label=name)
                axes[1, j].semilogy([r["wall_time"] for r in rs], [r["loss"] for r in rs],
                                    label=name)
            axes[0, j].set_title(f"{K} subdomain(s) / ranks")
            axes[0, j].set_xlabel("outer iteration")
            axes[1, j].set_xlabel("wall time [s] (oversubscribed on 2 cores)")
        axes[0, 0].set_ylabel("training loss")
        axes[1, 0].set_ylabel("training loss")
        axes[0, 0].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(os.path.join(args.figures, "dd_params.png"), dpi=110)
    b = [r for r in rows if r["part"] == "b" and r.get("val_accuracy") is not None]
    if b:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        for key in dict.fromkeys((r["method"], r["ranks"]) for r in b):
            rs = [r for r in b if (r["method"], r["ranks"]) == key]
            label = f"{key[0]}, {key[1]} rank(s)"
            axes[0].plot([r["epoch"] for r in rs], [r["val_accuracy"] for r in rs], "o-",
                         label=label, ms=3)
            axes[1].plot([r["wall_time"] for r in rs], [r["val_accuracy"] for r in rs], "o-",
                         label=label, ms=3)
        axes[0].set_xlabel("epoch")
        axes[1].set_xlabel("wall time [s] (oversubscribed on 2 cores)")
        axes[0].set_ylabel("validation accuracy")
        axes[0].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(os.path.join(args.figures, "dd_data.png"), dpi=110)
    if a:
        print("| ranks = subdomains | method | loss it. 1 | it. 10 | it. 20 | last | wall [s] |")
        print("|---|---|---|---|---|---|---|")
        for key in dict.fromkeys((r["ranks"], r["method"]) for r in a):
            rs = {r["iteration"]: r for r in a if (r["ranks"], r["method"]) == key}
            last = rs[max(rs)]
            cells = " | ".join(f"{rs[i]['loss']:.2e}" if i in rs else "-" for i in (1, 10, 20))
            print(f"| {key[0]} | {key[1]} | {cells} | {last['loss']:.2e} | "
                  f"{last['wall_time']:.1f} |")
        print()
    if b:
        epochs = sorted({r["epoch"] for r in b})
        print("| ranks | method | micro-batch | " + " | ".join(f"acc. ep. {e:g}" for e in epochs)
              + " | wall [s] |")
        print("|---|---|---|" + "---|" * len(epochs) + "---|")
        for key in dict.fromkeys((r["ranks"], r["method"]) for r in b):
            rs = {r["epoch"]: r for r in b if (r["ranks"], r["method"]) == key}
            last = rs[max(rs)]
            micro = last["micro_batch"] if key[1].startswith("sapts") else "-"
            print(f"| {key[0]} | {key[1]} | {micro} | "
                  + " | ".join(f"{rs[e]['val_accuracy']:.3f}" if e in rs else "-"
                               for e in epochs) + f" | {last['wall_time']:.1f} |")
        print()
    c = [r for r in rows if r["part"] == "c"]
    if c:
        print("| ranks | method | grid | time/epoch [s] | epochs to "
              f"{c[0]['target']:.2f} | final acc. | evals/it | comm./epoch [MB] |")
        print("|---|---|---|---|---|---|---|---|")
        for r in c:
            e = "not reached" if r["epochs_to_target"] is None else f"{r['epochs_to_target']:.1f}"
            print(f"| {r['ranks']} | {r['method']} | {r['grid']} | {r['time_per_epoch']:.3f} | "
                  f"{e} | {r['final_accuracy']:.3f} | {r['evaluations_per_iteration']:.1f} | "
                  f"{r['comm_bytes_per_epoch'] / 1e6:.2f} |")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("part", choices=["a", "b", "c", "plot"])
    p.add_argument("--out", default="dd_rows.jsonl")
    p.add_argument("--figures", default="bench/figures")
    p.add_argument("--iterations", type=int, default=30, help="(a) outer iterations")
    p.add_argument("--epochs", type=int, default=5, help="(b), (c) epochs")
    p.add_argument("--target", type=float, default=0.9, help="(c) validation accuracy")
    args = p.parse_args()
    if args.part == "plot":
        return plot(args)
    import layerparallel as lp

    comm = world()
    {"a": part_a, "b": part_b, "c": part_c}[args.part](args, lp, comm)


if __name__ == "__main__":
    sys.exit(main())

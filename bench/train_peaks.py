"""Training on peaks: accuracy, time per iteration, and PyTorch side by side.

  accuracy  width 8, 64 layers, T = 5: validation accuracy (mean/min/max over
            seeds) after 200 L-BFGS steps, serial vs one-shot MGRIT (d = 2), wall time;
  xbraid    the original XBraid code's peaks configuration: width 8, 32 layers,
            5000 samples full batch, L-BFGS with backtracking, 2 MGRIT iterations
            per solve, 2 levels: time per optimizer iteration (default threads
            and 1 thread, interleaved) and accuracy after --xbraid-iterations
            (reference: 0.57-0.70 s per iteration, 87.5 % after 130);
  line_search  L-BFGS trial evaluations full / loss-first / auto: time per
            iteration in serial and one-shot training, interleaved;
  pytorch   time to 90 % validation accuracy: our L-BFGS driving our
            gradients vs driving the same network's gradients from PyTorch
            autograd (CPU, float64), i.e. the same optimizer, two engines.

    python bench/train_peaks.py [--parts accuracy xbraid pytorch line_search] [--seeds 5]

Variants are timed interleaved by bench/harness.py (min and median over
--rounds; the processor and the load average are in every row).
"""

import argparse
import time

import numpy as np

from _common import emit, log
from harness import Variant, compare

import layerparallel as lp


def data(seed, n_train=5000, n_val=1000):
    X, Y = lp.datasets.peaks(n=n_train + n_val, seed=seed)
    return lp.datasets.train_validation_split(X, Y, n_val / (n_train + n_val), seed=seed)


def accuracy_part(args):
    for mode in ("serial", "one_shot"):
        accs, times = [], []
        for seed in range(args.seeds):
            X, Y, Xv, Yv = data(seed)
            net = lp.ODEResNet(2, 8, 64, 5, T=5.0, activation="smoothrelu", gamma_tik=1e-5)
            theta = net.init("uniform", seed=seed, magnitude=1e-6, outer="glorot")
            kw = {} if mode == "serial" else dict(solver=lp.MGRIT(cfactor=4), one_shot=2)
            t0 = time.perf_counter()
            h = lp.train(net, theta, X, Y, lp.optim.LBFGS(memory=5), iterations=200,
                         validation=(Xv, Yv), validate_every=50, **kw)
            times.append(time.perf_counter() - t0)
            accs.append(h.last("val_accuracy"))
            log(f"{mode} seed {seed}: {100 * accs[-1]:.1f}% in {times[-1]:.1f} s")
        emit(bench="train_peaks", part="accuracy", mode=mode, width=8, n_layers=64, steps=200,
             seeds=args.seeds, mean=float(np.mean(accs)), min=float(np.min(accs)),
             max=float(np.max(accs)), wall_s_mean=float(np.mean(times)))


def xbraid_part(args):
    """The original code's configuration, one-shot d = 2, with the default threads
    and one thread, interleaved (bench/harness.py): seconds per L-BFGS iteration."""
    X, Y, Xv, Yv = data(0)
    its = args.xbraid_iterations
    default = lp.get_num_threads()
    out = {}

    def run():
        net = lp.ODEResNet(2, 8, 32, 5, T=5.0, activation="smoothrelu", gamma_tik=1e-5)
        theta = net.init("uniform", seed=0, magnitude=1e-6, outer="glorot")
        mg = lp.MGRIT(cfactor=4, max_levels=2)
        h = lp.train(net, theta, X, Y, lp.optim.LBFGS(memory=5), iterations=its, solver=mg,
                     one_shot=2, validation=(Xv, Yv), validate_every=its)
        out["val_accuracy"] = h.last("val_accuracy")

    variants = [Variant(f"{default} threads", run, setup=lambda: lp.set_num_threads(default))]
    if default > 1:
        variants.append(Variant("1 thread", run, setup=lambda: lp.set_num_threads(1)))
    for r in compare(variants, rounds=args.rounds, min_seconds=0.0, warmup=0):
        emit(bench="train_peaks", part="xbraid_config", variant=r["name"], width=8,
             n_layers=32, samples=5000, levels=2, mgrit_iterations=2, iterations=its,
             per_iteration_min_s=r["min_s"] / its, per_iteration_median_s=r["median_s"] / its,
             val_accuracy=out["val_accuracy"], xbraid_per_iteration_s=0.635,
             speedup_vs_xbraid=0.635 / (r["median_s"] / its), processor=r["processor"],
             load_avg=r["load_avg_before"])
    lp.set_num_threads(default)


def line_search_part(args):
    """L-BFGS trial evaluations: full (loss and gradient at every trial), loss-first
    (gradient only at the accepted point) and auto, interleaved; seconds per
    iteration, in serial and in one-shot MGRIT training."""
    X, Y, Xv, Yv = data(0)
    its = args.line_search_iterations
    for mode in ("serial", "one_shot"):
        stats = {}

        def runner(policy):
            def run():
                net = lp.ODEResNet(2, 8, 32, 5, T=5.0, activation="smoothrelu",
                                   gamma_tik=1e-5)
                theta = net.init("uniform", seed=0, magnitude=1e-6, outer="glorot")
                kw = {} if mode == "serial" else dict(solver=lp.MGRIT(cfactor=4, max_levels=2),
                                                      one_shot=2)
                h = lp.train(net, theta, X, Y,
                             lp.optim.LBFGS(memory=5, trial_evaluations=policy),
                             iterations=its, **kw)
                stats[policy] = (sum(h["evaluations"]), sum(h["line_search_trials"]),
                                 h["loss"][-1])
            return run

        rows = compare([Variant(p, runner(p)) for p in ("full", "loss", "auto")],
                       rounds=args.rounds, min_seconds=0.0, warmup=0)
        for r in rows:
            ev, trials, loss = stats[r["name"]]
            emit(bench="train_peaks", part="line_search", mode=mode, policy=r["name"],
                 iterations=its, evaluations=ev, trials=trials, final_loss=loss,
                 per_iteration_min_s=r["min_s"] / its,
                 per_iteration_median_s=r["median_s"] / its, processor=r["processor"],
                 load_avg=r["load_avg_before"])


def torch_loss_and_grad(net, X, Y):
    """The same ODE-ResNet's J and gradient by PyTorch autograd (float64, CPU)."""
    import torch

    Xt = torch.from_numpy(X)
    labels = torch.from_numpy(np.argmax(Y, axis=1))
    h = net.h
    eta = net.eta

    def sigma(z):  # smoothrelu
        return torch.where(z >= eta, z, torch.where(z <= -eta, torch.zeros_like(z),
                                                    (z + eta) ** 2 / (4 * eta)))

    def f(theta):
        t = {k: torch.from_numpy(np.array(getattr(theta, k))).requires_grad_()
             for k in ("W_in", "b_in", "W", "b", "W_out", "b_out")}
        u = sigma(Xt @ t["W_in"].T + t["b_in"])
        for n in range(net.n_layers):
            u = u + h * sigma(u @ t["W"][n].T + t["b"][n])
        J = torch.nn.functional.cross_entropy(u @ t["W_out"].T + t["b_out"], labels)
        J = J + net.gamma_tik / 2 * h * ((t["W"] ** 2).sum() + (t["b"] ** 2).sum())
        J.backward()
        g = net.new_params()
        for k, v in t.items():
            getattr(g, k)[...] = v.grad.numpy()
        return float(J), g
    return f


class TorchNet:
    """Duck-types ODEResNet.loss_and_grad for lp.train, with PyTorch doing the work."""

    def __init__(self, net):
        self.__dict__.update({k: getattr(net, k) for k in (
            "n_in", "n_out", "head", "rank", "size", "comm", "width", "n_layers")})
        self._net = net

    def loss_and_grad(self, theta, X, Y):
        return torch_loss_and_grad(self._net, X, Y)(theta)

    def __getattr__(self, name):
        return getattr(self._net, name)

    def __repr__(self):
        return "Torch" + repr(self._net)


def pytorch_part(args):
    try:
        import torch
    except ImportError:
        log("torch not installed: PyTorch comparison skipped (pip install torch)")
        return
    torch.set_num_threads(lp.get_num_threads())
    X, Y, Xv, Yv = data(0)
    for engine in ("layerparallel", "pytorch"):
        net = lp.ODEResNet(2, 8, 32, 5, T=5.0, activation="smoothrelu", gamma_tik=1e-5)
        theta = net.init("uniform", seed=0, magnitude=1e-6, outer="glorot")
        trained = net if engine == "layerparallel" else TorchNet(net)
        t0 = time.perf_counter()
        # Full evaluations at every trial for both engines: the comparison is of
        # the engines under one optimizer, not of line-search policies.
        h = lp.train(trained, theta, X, Y, lp.optim.LBFGS(memory=5, trial_evaluations="full"),
                     iterations=400,
                     validation=(Xv, Yv), validate_every=5, target_accuracy=0.9)
        t = time.perf_counter() - t0
        emit(bench="train_peaks", part="time_to_90", engine=engine, width=8, n_layers=32,
             reached=bool(h.stopped_early), iterations=len(h["loss"]), seconds=t,
             val_accuracy=h.last("val_accuracy"))
        if engine == "layerparallel":
            ours = t
        else:
            emit(bench="train_peaks", part="time_to_90_ratio", ratio_pytorch_over_ours=t / ours)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parts = {"accuracy": accuracy_part, "xbraid": xbraid_part, "pytorch": pytorch_part,
             "line_search": line_search_part}
    ap.add_argument("--parts", nargs="+", default=list(parts), choices=list(parts))
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (harness)")
    ap.add_argument("--xbraid-iterations", type=int, default=40)
    ap.add_argument("--line-search-iterations", type=int, default=60)
    args = ap.parse_args()
    for part in args.parts:
        parts[part](args)


if __name__ == "__main__":
    main()

"""lp.dd.ParameterDecomposition: local steps on layer subdomains as a nonlinear
preconditioner of a global L-BFGS method.

One outer iteration from theta^k (J, g and the forward/adjoint states of one
global solve at theta^k):

1. every subdomain s (layers [a_s, b_s), one or more per layer rank, opening
   layer with the first, head with the last) takes ``local_steps`` steps of
   its own optimizer on its local objective (subdomain.py: its layers only,
   the rest frozen, fed by u_{a_s} and lambda_{b_s} of the global solve);
2. the local updates together form the correction c (every rank its own
   layers; the opening and head updates are broadcast, as those are
   replicated); the preconditioned iterate is theta~ = theta^k + alpha c with
   alpha the first of 1, 1/2, ... (at most ``max_damping`` halvings) whose
   loss is not above J(theta^k) (else theta~ = theta^k);
3. one global L-BFGS step from theta~: d = -H g(theta~) by the two-loop
   recursion, Armijo backtracking along d, and the pair
   (theta^{k+1} - theta~, g(theta^{k+1}) - g(theta~)) into the memory.

With zero local steps this is plain L-BFGS; with one subdomain it is the
local optimizer followed by an L-BFGS line-search step. Weights never travel:
a rank sends one adjoint state to its left neighbour per outer iteration.
"""

import math

import numpy as np

from .. import _validation as check
from ..mgrit import MGRIT
from ..optim import LBFGS
from ..params import Params
from .axes import Axes, optimizer_template
from .subdomain import Subdomain


class ParameterDecomposition:
    """Parameter (layer) decomposition with a preconditioned L-BFGS.

    Parameters
    ----------
    local_optimizer : "gd" | "sgd" | "adam" | "lbfgs" or an lp.optim optimizer
        The template of every subdomain's optimizer (each gets a copy; with a
        name, ``local_lr`` sets its learning rate).
    local_steps : int >= 0
    subdomains : int or None
        Subdomains in all; None: one per layer rank. A multiple of the layer
        ranks (each rank then solves its share one after another), at most the
        number of layers. Blocks are floor(N s / S) .. floor(N (s+1) / S) - 1,
        the layout of the ranks.
    memory, lr, c1, backtrack, max_backtracks : the global lp.optim.LBFGS.
    proximal : float > 0
        mu of the downstream model of subdomain.py.
    max_damping : int >= 0
        Halvings of the correction before it is dropped.
    reset_local : bool
        Forget the local optimizers' state (moments, pairs) every outer
        iteration; by default it carries over.

    Used as ``lp.train(net, theta, X, Y, optimizer=pd, solver=...)``; the
    network may be distributed (its layer ranks are the subdomains) and on a
    process grid (each group's share of the batch, local gradients summed
    over the groups). Without a solver the global solves are serial
    propagation (a one-level lp.MGRIT, which keeps the states).
    """

    uses_batch = True

    def __init__(self, local_optimizer="adam", local_steps=5, subdomains=None, memory=5,
                 lr=1.0, c1=1e-4, backtrack=0.5, max_backtracks=30, proximal=1.0,
                 max_damping=5, reset_local=False, local_lr=None):
        if (isinstance(local_steps, bool) or not isinstance(local_steps, (int, np.integer))
                or local_steps < 0):
            raise ValueError(f"local_steps must be a nonnegative integer, got {local_steps!r}")
        self.local_steps = int(local_steps)
        if isinstance(local_optimizer, str) and local_lr is not None:
            from ..optim import create

            self.template = create(local_optimizer, lr=local_lr)
        else:
            if local_lr is not None:
                raise ValueError("local_lr is only accepted with an optimizer name")
            self.template = optimizer_template(local_optimizer, "local_optimizer")
        self.subdomains = None if subdomains is None else check.positive_int(subdomains,
                                                                             "subdomains")
        self.proximal = check.finite_float(proximal, "proximal", strictly_positive=True)
        if (isinstance(max_damping, bool) or not isinstance(max_damping, (int, np.integer))
                or max_damping < 0):
            raise ValueError(f"max_damping must be a nonnegative integer, got {max_damping!r}")
        self.max_damping = int(max_damping)
        self.reset_local = bool(reset_local)
        self.global_opt = LBFGS(memory=memory, lr=lr, c1=c1, backtrack=backtrack,
                                max_backtracks=max_backtracks)
        self.iterations = 0
        self._net = None
        self._last_point = None

    # ---- binding to the network -------------------------------------------
    def bind(self, net, solver=None):
        """Attach to the network it trains; returns the solver training must use
        (``solver``, or serial propagation as a one-level lp.MGRIT that keeps
        the states the subdomains start from). Checks the subdomain count."""
        if str(getattr(net, "dtype", "float64")) != "float64":
            raise ValueError("the decomposition methods train float64 networks only; "
                             "create the network with dtype='float64'")
        axes = Axes(net)
        inner = axes.inner
        P = inner.size
        S = P if self.subdomains is None else self.subdomains
        if S > inner.n_layers:
            raise ValueError(f"subdomains={S} is more than the {inner.n_layers} layers")
        if S % P:
            raise ValueError(f"subdomains={S} must be a multiple of the {P} layer ranks")
        if solver is None:
            solver = MGRIT(max_levels=1, tol=None, max_iter=1, warm_start=False,
                           comm=inner.comm)
        elif not isinstance(solver, MGRIT):
            raise ValueError(f"solver must be an lp.MGRIT or None, got {solver!r}")
        self._axes, self._net, self._solver, self._S = axes, net, solver, S
        per = S // P
        self._blocks = []
        for s in range(per * inner.rank, per * (inner.rank + 1)):
            a, b = inner.n_layers * s // S, inner.n_layers * (s + 1) // S
            self._blocks.append(Subdomain(inner, a, b, s == 0, s == S - 1, self.proximal))
        if not hasattr(self, "_local") or len(self._local) != len(self._blocks):
            self._local = [optimizer_template(self.template, "local_optimizer")
                           for _ in self._blocks]
        self._last_point = None
        return solver

    # ---- lp.optim interface -----------------------------------------------
    def reset(self):
        self.global_opt.reset()
        for opt in getattr(self, "_local", ()):
            opt.reset()
        self.iterations = 0
        self._last_point = None

    def state_dict(self):
        d = {"iterations": int(self.iterations), "global": self.global_opt.state_dict()}
        d["local"] = {str(k): opt.state_dict() for k, opt in enumerate(getattr(self, "_local",
                                                                                ()))}
        return d

    def load_state_dict(self, d):
        self.global_opt.load_state_dict(d["global"])
        local = d.get("local") or {}
        for k, opt in enumerate(getattr(self, "_local", ())):
            if str(k) in local:
                opt.load_state_dict(local[str(k)])
        self.iterations = int(np.asarray(d["iterations"]).reshape(()))

    def __repr__(self):
        return (f"ParameterDecomposition(local={self.template!r}, local_steps={self.local_steps}, "
                f"subdomains={self.subdomains}, global={self.global_opt!r})")

    def step(self, theta, loss, grad, closure, batch=None):
        """One outer iteration (module docstring) on the batch (X, Y); theta is
        updated in place. ``closure(theta) -> (J, grad)`` is the global
        evaluation with the bound solver (lp.train's)."""
        if self._net is None:
            raise ValueError("ParameterDecomposition needs bind(net, solver) first "
                             "(lp.train does it)")
        if batch is None or closure is None:
            raise ValueError("ParameterDecomposition.step needs the batch (X, Y) and a closure")
        if not isinstance(theta, Params):
            raise ValueError("theta must be the network's lp.Params")
        X, Y = batch
        evaluations = 0

        def evaluate(point):
            nonlocal evaluations
            evaluations += 1
            out = closure(point)
            self._last_point = point.data.copy()
            return out

        # The subdomains need the states of a solve at theta on this batch.
        if (loss is None or grad is None or self._last_point is None
                or not np.array_equal(self._last_point, theta.data)):
            loss, grad = evaluate(theta)
        J0, g0 = float(loss), grad
        alpha, local_evaluations = 0.0, 0
        if self.local_steps > 0:
            correction, local_evaluations = self._local_updates(theta, g0, X, Y)
            if correction.norm() > 0.0:
                alpha = 1.0
                for _ in range(self.max_damping + 1):
                    trial = theta.copy()
                    trial.data += alpha * correction.data
                    Jt, gt = evaluate(trial)
                    if math.isfinite(Jt) and Jt <= J0 and math.isfinite(gt.norm()):
                        theta.data[...] = trial.data
                        J0, g0 = float(Jt), gt
                        break
                    alpha *= 0.5
                else:
                    alpha = 0.0
        info = self.global_opt.step(theta, J0, g0, evaluate)
        self.iterations += 1
        return {"loss": info["loss"], "grad": info["grad"], "step_size": info["step_size"],
                "evaluations": evaluations, "local_evaluations": local_evaluations,
                "preconditioner_step": alpha, "line_search_failed": info["line_search_failed"],
                "grad_norm": info["grad_norm"]}

    # ---- the preconditioner -----------------------------------------------
    def _local_updates(self, theta, g0, X, Y):
        """The correction of all subdomains (theta's layout) and the local evaluations made."""
        axes, inner = self._axes, self._axes.inner
        n = X.shape[0]
        rows, weight = axes.part(n, axes.groups, axes.group)
        Xs, Ys = np.ascontiguousarray(X[rows]), np.ascontiguousarray(Y[rows])
        model = inner._parallel_model(self._solver)
        lam_right = self._adjoint_from_right(model, Xs.shape[0])
        correction = theta.zeros_like()
        evaluations = 0
        for sd, opt in zip(self._blocks, self._local):
            if self.reset_local:
                opt.reset()
            p0, x0, local_loss = self._local_problem(sd, theta, model, Xs, Ys, lam_right, weight)
            L0, gL0 = local_loss(x0)
            evaluations += 1
            g_block = sd.block_of(g0)
            tau = g_block - gL0

            def objective(v, local_loss=local_loss, tau=tau, x0=x0):
                nonlocal evaluations
                evaluations += 1
                L, gl = local_loss(v)
                return L + float(tau @ (v - x0)), gl + tau

            x = x0.copy()
            f, g = L0, g_block  # the local objective's value and gradient at x0
            for j in range(self.local_steps):
                if g is None:
                    f, g = objective(x)
                info = opt.step(x, f, g, objective)
                f, g = info["loss"], info["grad"]
                if g is not None:
                    g = np.asarray(g, dtype=np.float64)
            p = p0.copy()
            p.data[...] = 0.0
            p.data[:sd.size] = x - x0
            sd.insert(p, correction)
        self._share_outer(correction)
        return correction, evaluations

    def _local_problem(self, sd, theta, model, Xs, Ys, lam_right, weight):
        """(p0, x0, L) of subdomain sd: its local parameters at theta, their
        trainable part x0, and L(x) -> (local loss, gradient) summed over the
        data groups (without the correction tau)."""
        p0 = sd.extract(theta)
        X_loc = Xs if sd.first else model.state(sd.a, False)
        Y_loc = Ys
        if not sd.last:
            lam_b = model.state(sd.b, True) if model.owns(sd.b, True) else lam_right
            Y_loc = sd.targets(Ys, sd.local.forward(p0, X_loc), lam_b)
        axes = self._axes

        def local_loss(v):
            p = p0.copy()
            p.data[:sd.size] = v
            L, gl = sd.local.loss_and_grad(p, X_loc, Y_loc)
            buf = np.empty(sd.size + 1)
            buf[0] = weight * L
            np.multiply(gl.data[:sd.size], weight, out=buf[1:])
            buf = axes.sum(buf)
            return float(buf[0]), buf[1:]

        return p0, p0.data[:sd.size].copy(), local_loss

    def _adjoint_from_right(self, model, rows):
        """lambda at this rank's last layer point, held by the right neighbour."""
        inner = self._axes.inner
        comm = inner.comm
        if comm is None or inner.size == 1:
            return None
        r, P = inner.rank, inner.size
        req = None
        if r > 0:
            mine = model.state(inner.first_layer, True)
            req = comm.Isend(mine, dest=r - 1, tag=71)
        right = None
        if r + 1 < P:
            right = np.empty((rows, inner.width))
            comm.Recv(right, source=r + 1, tag=71)
        if req is not None:
            req.Wait()
        return right

    def _share_outer(self, correction):
        """The opening layer's update lives on layer rank 0, the head's on the
        last: both are replicated, so broadcast them."""
        inner = self._axes.inner
        if inner.comm is None or inner.size == 1:
            return
        layout = correction.layout
        open_end = layout["W"][0]
        head_start = layout["W_out"][0]
        if open_end:
            buf = np.ascontiguousarray(correction.data[:open_end])
            inner.comm.Bcast(buf, root=0)
            correction.data[:open_end] = buf
        buf = np.ascontiguousarray(correction.data[head_start:])
        inner.comm.Bcast(buf, root=inner.size - 1)
        correction.data[head_start:] = buf

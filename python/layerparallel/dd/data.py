"""lp.dd.DataDecomposition: the stochastic additively preconditioned trust-region
strategy (SAPTS) over micro-batches.

One outer iteration on a mini-batch B of n rows with the global radius Delta:

1. B is split into M micro-batches B_m (rows floor(n m/M) .. floor(n (m+1)/M) - 1,
   weights w_m = |B_m|/n); M = ``micro_batches`` (default: one per data group
   of the process grid; a multiple of them, each group taking its share in
   turn);
2. from the same start x^k every micro-batch runs ``local_steps`` trust-region
   trials (trust_region.py, its own quasi-Newton model kept across outer
   iterations) on its loss L_m + tau_m^T (x - x^k), tau_m = g_B(x^k) - g_m(x^k)
   (first-order consistent with the mini-batch loss L_B; ``consistent=False``
   drops tau), starting at radius Delta; every local step stays in the ball
   ||x_m - x^k|| <= Delta;
3. the update s = sum_m w_m (x_m - x^k) (the share-weighted sum: an average of
   the local updates, so ||s|| <= Delta) with the predicted reduction
   pred = sum_m w_m (the local models' reductions of the accepted trials);
4. rho = (L_B(x^k) - L_B(x^k + s)) / pred on the whole mini-batch: s is
   accepted when pred > 0 and rho > accept (never when the mini-batch loss
   rises), and Delta follows the radius rules of trust_region.py with rho and
   ||s||.

With one micro-batch and one local step this is exactly the trust-region
method lp.dd.TrustRegion. Communication: one parameter vector (this rank's
layers) and a few scalars summed over the data groups per outer iteration.
"""

import math

import numpy as np

from .. import _validation as check
from ..params import Params
from .axes import Axes
from .trust_region import Dots, TrustRegion, update_radius


class DataDecomposition:
    """SAPTS (module docstring).

    Parameters
    ----------
    local_steps : int >= 1
        Trust-region trials per micro-batch and outer iteration.
    micro_batches : int or None
        Micro-batches per mini-batch; None: one per data group.
    consistent : bool
        Add tau^T (x - x^k), tau = g_B(x^k) - g_m(x^k), to every micro-batch
        loss, so that each local problem starts with the mini-batch gradient
        (first-order consistency, as in the parameter decomposition). Without
        it, conflicting micro-batch gradients keep rho small and the radius
        collapses (bench/dd_study.py shows it).
    radius, model ("lsr1" | "lbfgs"), subproblem ("steihaug" | "cauchy"),
    memory, max_radius, accept, low, high, shrink, expand, cg_iterations :
        as lp.dd.TrustRegion (radius: the initial global radius).

    Used as ``lp.train(net, theta, X, Y, optimizer=DataDecomposition(...),
    batch_size=100)``; ``net`` from ``lp.ProcessGrid(...).network(...)``
    splits the micro-batches over its data groups (and each group's layers
    over its layer ranks).
    """

    uses_batch = True

    def __init__(self, local_steps=3, micro_batches=None, radius=0.1, model="lsr1",
                 subproblem="steihaug", memory=5, max_radius=10.0, accept=1e-4, low=0.25,
                 high=0.75, shrink=0.25, expand=2.0, cg_iterations=50, consistent=True):
        self.consistent = bool(consistent)
        self.local_steps = check.positive_int(local_steps, "local_steps")
        self.micro_batches = (None if micro_batches is None
                              else check.positive_int(micro_batches, "micro_batches"))
        self.options = dict(radius=radius, model=model, subproblem=subproblem, memory=memory,
                            max_radius=max_radius, accept=accept, low=low, high=high,
                            shrink=shrink, expand=expand, cg_iterations=cg_iterations)
        self.template = TrustRegion(**self.options)  # checks every option
        self.reset()
        self._net = None

    def reset(self):
        self.radius = self.template.radius0
        self.iterations = 0
        for tr in getattr(self, "_local", ()):
            tr.reset()

    def bind(self, net, solver=None):
        """Attach to the network; returns ``solver`` unchanged."""
        if str(getattr(net, "dtype", "float64")) != "float64":
            raise ValueError("the decomposition methods train float64 networks only; "
                             "create the network with dtype='float64'")
        axes = Axes(net)
        M = axes.groups if self.micro_batches is None else self.micro_batches
        if M % axes.groups:
            raise ValueError(f"micro_batches={M} must be a multiple of the {axes.groups} "
                             "data groups")
        self._axes, self._net, self._solver, self._M = axes, net, solver, M
        per = M // axes.groups
        self._mine = list(range(axes.group * per, (axes.group + 1) * per))
        if not hasattr(self, "_local") or len(self._local) != per:
            self._local = [TrustRegion(**self.options) for _ in self._mine]
        return solver

    def state_dict(self):
        d = {"iterations": int(self.iterations), "radius": float(self.radius)}
        d["local"] = {str(k): tr.state_dict() for k, tr in enumerate(getattr(self, "_local",
                                                                               ()))}
        return d

    def load_state_dict(self, d):
        r = float(np.asarray(d["radius"]).reshape(()))
        if not (math.isfinite(r) and r > 0.0):
            raise ValueError(f"state dict entry 'radius' must be positive, got {r!r}")
        local = d.get("local") or {}
        for k, tr in enumerate(getattr(self, "_local", ())):
            if str(k) in local:
                tr.load_state_dict(local[str(k)])
        self.radius = r
        self.iterations = int(np.asarray(d["iterations"]).reshape(()))

    def __repr__(self):
        o = self.options
        return (f"DataDecomposition(local_steps={self.local_steps}, "
                f"micro_batches={self.micro_batches}, radius={o['radius']}, "
                f"model={o['model']!r}, subproblem={o['subproblem']!r}, memory={o['memory']})")

    def rules(self, rho, step_norm, accepted):
        """The global radius after an outer iteration."""
        t = self.template
        return update_radius(self.radius, rho, step_norm, accepted, t.low, t.high, t.shrink,
                             t.expand, t.max_radius)

    def step(self, theta, loss, grad, closure=None, batch=None):
        """One outer iteration on the mini-batch (X, Y); theta updated in place.
        ``loss`` is the mini-batch loss at theta (``grad`` is used only with a
        single micro-batch, where it is the micro-batch's)."""
        if self._net is None:
            raise ValueError("DataDecomposition needs bind(net, solver) first (lp.train does it)")
        if batch is None:
            raise ValueError("DataDecomposition.step needs the batch (X, Y)")
        if not isinstance(theta, Params):
            raise ValueError("theta must be the network's lp.Params")
        X, Y = batch
        axes, inner, solver = self._axes, self._axes.inner, self._solver
        n = X.shape[0]
        if n < self._M:
            raise ValueError(f"a batch of {n} rows cannot be split into {self._M} micro-batches")
        if loss is None:
            loss = self._net.loss(theta, X, Y, solver)
        J0 = float(loss)
        dots = Dots(theta)
        g_batch = None if grad is None else (grad.data if isinstance(grad, Params)
                                             else np.asarray(grad, dtype=np.float64))
        tau_needed = self.consistent and self._M > 1
        if tau_needed and g_batch is None:
            g_batch = self._net.loss_and_grad(theta, X, Y, solver)[1].data
        delta = self.radius
        s = np.zeros(theta.size + 2)  # [sum w_m (x_m - x^k), pred, evaluations]
        single = self._M == 1
        final, last_x = None, None
        for m, tr in zip(self._mine, self._local):
            rows, w = axes.part(n, self._M, m)
            Xm, Ym = np.ascontiguousarray(X[rows]), np.ascontiguousarray(Y[rows])

            def micro(point, Xm=Xm, Ym=Ym):
                out = inner.loss_and_grad(point, Xm, Ym, solver=solver)
                return out[0], out[1].data

            x = theta.copy()
            if single and g_batch is not None:
                f, gvec = J0, g_batch
            else:
                f, gvec = micro(x)
                s[-1] += 1
            local = micro
            if tau_needed:  # first-order consistency with the mini-batch
                tau = g_batch - gvec
                gvec = g_batch

                def local(point, micro=micro, tau=tau):
                    L, gm = micro(point)
                    return L + dots.dot(tau, point.data - theta.data), gm + tau
            radius, pred = delta, 0.0
            for _ in range(self.local_steps):
                room = delta - dots.norm(x.data - theta.data)
                if room <= 1e-12 * delta:
                    break
                t = tr.trial(x, x.data, f, gvec, local, min(radius, room), dots)
                s[-1] += t["evaluations"]
                radius = tr.rules(t["rho"], t["step_norm"], t["accepted"], radius)
                if t["accepted"]:
                    pred += t["predicted"]
                    f, gvec = t["loss"], t["gvec"]
            s[:-2] += w * (x.data - theta.data)
            s[-2] += w * pred
            final, last_x = f, x.data
        s = axes.sum(s)
        step, pred, evaluations = s[:-2], float(s[-2]), int(s[-1])
        step_norm = dots.norm(step)
        accepted, rho, J1 = False, 0.0, J0
        if pred > 0.0 and step_norm > 0.0:
            if single:  # the micro-batch is the mini-batch: its last loss is the test
                J1 = final
            else:
                trial = theta.copy()
                trial.data += step
                J1 = float(self._net.loss(trial, X, Y, solver))
                evaluations += 1
            rho = (J0 - J1) / pred if math.isfinite(J1) else -math.inf
            accepted = rho > self.template.accept
        if accepted:
            if single:
                theta.data[...] = last_x
            else:
                theta.data += step
        self.radius = self.rules(rho, step_norm, accepted)
        self.iterations += 1
        return {"loss": J1 if accepted else J0, "grad": None,
                "step_size": step_norm if accepted else 0.0, "evaluations": evaluations,
                "rho": rho, "accepted": accepted, "radius": self.radius, "predicted": pred}

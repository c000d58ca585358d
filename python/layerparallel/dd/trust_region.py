"""A trust-region method with limited-memory quasi-Newton models.

Model m(p) = g^T p + 1/2 p^T B p with B a compact limited-memory matrix built
from the last ``memory`` pairs (s_i, y_i), B_0 = gamma I, gamma = y^T y / s^T y
of the newest pair with s^T y > 0 (1 before):

- "lbfgs": B = gamma I - W^T M^{-1} W,  W = [gamma S; Y],
  M = [[gamma S S^T, L], [L^T, -D]]   (positive definite; pairs need s^T y > 0);
- "lsr1":  B = gamma I + Psi^T M^{-1} Psi,  Psi = Y - gamma S,
  M = D + L + L^T - gamma S S^T        (may be indefinite; a pair is skipped
  unless |s^T (y - B s)| >= 1e-8 ||s|| ||y - B s||),

with S, Y the pairs as rows, D + L + U = S Y^T (diagonal, strict lower and
upper parts). The step p solves min m(p), ||p|| <= radius, by Steihaug's
truncated conjugate gradients ("steihaug") or is the Cauchy point ("cauchy").

Ratio rho = (J(x) - J(x + p)) / (m(0) - m(p)). The step is accepted when
rho > accept (accept >= 0: never when the loss rises). The radius becomes
shrink * radius when rho < low (or the step is rejected),
min(expand * radius, max_radius) when rho > high and ||p|| >= 0.9 radius, and
stays otherwise. Every trial's pair (s, g(x + p) - g(x)) updates the model,
accepted or not.

Under MPI the vectors are this rank's part of lp.Params; every inner product
is reduced over the layer ranks (a batch of them in one reduction), so all
ranks take the same decisions.
"""

import math

import numpy as np

from .._validation import choice, finite_float, positive_int
from ..optim import Optimizer, _array, _evaluate, _loss, _scalar, _trial, _vector
from ..params import Params

MODELS = ("lsr1", "lbfgs")
SUBPROBLEMS = ("steihaug", "cauchy")
BOUNDARY = 0.9        # a step this close to the radius counts as on the boundary
SR1_SKIP = 1e-8       # L-SR1 pair test
MAX_CONDITION = 1e12  # the small middle matrix of the compact form


class Dots:
    """Inner products of vectors laid out like ``theta`` (lp.Params or array):
    ``rows(A, v)`` = A v for a matrix of such vectors as rows, with one
    reduction over the layer ranks; the replicated opening layer and head
    count once (as in ``Params.dot``)."""

    def __init__(self, theta):
        self.comm = None
        if isinstance(theta, Params) and theta.distributed:
            layout = theta.layout
            self.comm = theta._dist[0]
            self.lo, self.hi = layout["W"][0], layout["W_out"][0]

    def rows(self, A, v):
        A = np.atleast_2d(A)
        if self.comm is None:
            return A @ v
        from mpi4py import MPI

        lo, hi = self.lo, self.hi
        local = np.ascontiguousarray(A[:, lo:hi] @ v[lo:hi])
        self.comm.Allreduce(MPI.IN_PLACE, local, op=MPI.SUM)
        return local + (A[:, :lo] @ v[:lo] + A[:, hi:] @ v[hi:])

    def dot(self, a, b):
        return float(self.rows(a, b)[0])

    def norm(self, a):
        return math.sqrt(max(self.dot(a, a), 0.0))


class QuasiNewtonModel:
    """The compact limited-memory matrix B of ``kind`` ("lsr1" or "lbfgs")."""

    def __init__(self, kind, memory):
        self.kind, self.memory = kind, memory
        self.reset()

    def reset(self):
        self.S, self.Y = [], []
        self.gamma = 1.0
        self._compact = None

    def _build(self, dots):
        """(rows, M^{-1} with sign) of the compact form, recomputed after updates."""
        if self._compact is not None or not self.S:
            return self._compact
        while self.S:
            S, Y = np.array(self.S), np.array(self.Y)
            m = len(S)
            G = np.array([dots.rows(np.vstack([S, Y]), s) for s in S]).reshape(m, 2 * m)
            SS, SY = G[:, :m], G[:, m:]  # SS_ij = s_i s_j, SY_ij = s_i y_j
            D = np.diag(np.diag(SY))
            L = np.tril(SY, -1)
            g = self.gamma
            if self.kind == "lbfgs":
                rows = np.vstack([g * S, Y])
                M = np.block([[g * SS, L], [L.T, -D]])
                sign = -1.0
            else:
                rows = Y - g * S
                M = D + L + L.T - g * SS
                sign = 1.0
            if np.all(np.isfinite(M)) and np.linalg.cond(M) < MAX_CONDITION:
                self._compact = (rows, sign * np.linalg.inv(M))
                return self._compact
            del self.S[0], self.Y[0]  # an ill-conditioned memory: forget the oldest pair
        return None

    def product(self, v, dots):
        """B v."""
        compact = self._build(dots)
        out = self.gamma * v
        if compact is not None:
            rows, Minv = compact
            out = out + rows.T @ (Minv @ dots.rows(rows, v))
        return out

    def update(self, s, y, dots):
        """Add the pair (s, y) when it keeps B well defined; True if stored."""
        sy, yy, ss = self._pair_dots(s, y, dots)
        if not (math.isfinite(sy) and math.isfinite(yy) and math.isfinite(ss)) or ss == 0.0:
            return False
        if self.kind == "lbfgs":
            if sy <= 1e-10 * math.sqrt(ss * yy):
                return False
        else:
            r = y - self.product(s, dots)
            rs, rr = (float(x) for x in dots.rows(np.vstack([s, r]), r))
            if abs(rs) < SR1_SKIP * math.sqrt(ss * rr) or rr == 0.0:
                return False
        if len(self.S) == self.memory:
            del self.S[0], self.Y[0]
        self.S.append(s.copy())
        self.Y.append(y.copy())
        if sy > 0.0:
            self.gamma = yy / sy
        self._compact = None
        return True

    @staticmethod
    def _pair_dots(s, y, dots):
        sy, yy = dots.rows(np.vstack([s, y]), y)
        return float(sy), float(yy), dots.dot(s, s)

    def state(self):
        n = self.S[0].size if self.S else 0
        return {"S": np.array(self.S).reshape(len(self.S), n),
                "Y": np.array(self.Y).reshape(len(self.Y), n), "gamma": float(self.gamma)}

    def load(self, d):
        S, Y = _array(d, "S", 2), _array(d, "Y", 2)
        if S.shape != Y.shape or S.shape[0] > self.memory:
            raise ValueError(f"state dict entries S {S.shape} and Y {Y.shape} do not fit "
                             f"memory={self.memory}")
        gamma = float(_scalar(d, "gamma"))
        if not (math.isfinite(gamma) and gamma > 0.0):
            raise ValueError(f"state dict entry 'gamma' must be positive, got {gamma!r}")
        self.S, self.Y = [r.copy() for r in S], [r.copy() for r in Y]
        self.gamma = gamma
        self._compact = None


def _to_boundary(z, d, radius, dots):
    """tau >= 0 with ||z + tau d|| = radius."""
    zz, zd = (float(x) for x in dots.rows(np.vstack([z, d]), z))
    dd = dots.dot(d, d)
    disc = max(zd * zd - dd * (zz - radius * radius), 0.0)
    return (-zd + math.sqrt(disc)) / dd


def steihaug(g, model, radius, dots, max_iterations):
    """Steihaug's truncated CG for min g^T p + 1/2 p^T B p, ||p|| <= radius."""
    z = np.zeros_like(g)
    r = g.copy()
    rr = dots.dot(r, r)
    gnorm = math.sqrt(rr)
    tol = min(0.5, math.sqrt(gnorm)) * gnorm
    if gnorm == 0.0:
        return z
    d = -r
    for _ in range(max_iterations):
        Bd = model.product(d, dots)
        dBd = dots.dot(d, Bd)
        if dBd <= 0.0:  # negative curvature: go to the boundary along d
            return z + _to_boundary(z, d, radius, dots) * d
        alpha = rr / dBd
        z_next = z + alpha * d
        if dots.norm(z_next) >= radius:
            return z + _to_boundary(z, d, radius, dots) * d
        r = r + alpha * Bd
        rr_next = dots.dot(r, r)
        z = z_next
        if math.sqrt(rr_next) < tol:
            return z
        d = -r + (rr_next / rr) * d
        rr = rr_next
    return z


def cauchy_point(g, model, radius, dots):
    """The minimizer of the model along -g within the radius."""
    gnorm = dots.norm(g)
    if gnorm == 0.0:
        return np.zeros_like(g)
    gBg = dots.dot(g, model.product(g, dots))
    tau = 1.0 if gBg <= 0.0 else min(gnorm ** 3 / (radius * gBg), 1.0)
    return (-tau * radius / gnorm) * g


def update_radius(radius, rho, step_norm, accepted, low=0.25, high=0.75, shrink=0.25,
                  expand=2.0, max_radius=10.0):
    """The radius rules (module docstring)."""
    if not accepted or not rho >= low:
        return shrink * radius
    if rho > high and step_norm >= BOUNDARY * radius:
        return min(expand * radius, max_radius)
    return radius


class TrustRegion(Optimizer):
    """The trust-region method of this module as an lp.optim optimizer:
    ``step(theta, loss, grad, closure)`` (one trial, accepted or not).

    Parameters: ``radius`` (initial, > 0), ``model`` ("lsr1" | "lbfgs"),
    ``subproblem`` ("steihaug" | "cauchy"), ``memory``, ``max_radius``,
    ``accept``, ``low``, ``high``, ``shrink``, ``expand``, ``cg_iterations``.
    Info: "loss" and "grad" at the returned theta, "step_size" (||p||, 0 when
    rejected), "evaluations", "rho", "accepted", "radius" (after the update),
    "predicted" (m(0) - m(p)).
    """

    _hyper = ("radius0", "model", "subproblem", "memory", "max_radius", "accept", "low", "high",
              "shrink", "expand", "cg_iterations")
    _needs_loss = True

    def __init__(self, radius=0.1, model="lsr1", subproblem="steihaug", memory=5,
                 max_radius=10.0, accept=1e-4, low=0.25, high=0.75, shrink=0.25, expand=2.0,
                 cg_iterations=50):
        super().__init__(radius0=radius, model=model, subproblem=subproblem, memory=memory,
                         max_radius=max_radius, accept=accept, low=low, high=high,
                         shrink=shrink, expand=expand, cg_iterations=cg_iterations)

    def _configure(self, radius0, model, subproblem, memory, max_radius, accept, low, high,
                   shrink, expand, cg_iterations):
        self.radius0 = finite_float(radius0, "radius", strictly_positive=True)
        self.model = choice(model, "model", MODELS)
        self.subproblem = choice(subproblem, "subproblem", SUBPROBLEMS)
        self.memory = positive_int(memory, "memory")
        self.max_radius = finite_float(max_radius, "max_radius", strictly_positive=True)
        if self.max_radius < self.radius0:
            raise ValueError(f"max_radius ({self.max_radius}) must be >= radius ({self.radius0})")
        self.accept = finite_float(accept, "accept", minimum=0.0)
        self.low = finite_float(low, "low")
        self.high = finite_float(high, "high")
        if not self.accept <= self.low < self.high < 1.0:
            raise ValueError(f"need 0 <= accept <= low < high < 1, got accept={self.accept}, "
                             f"low={self.low}, high={self.high}")
        self.shrink = finite_float(shrink, "shrink")
        self.expand = finite_float(expand, "expand")
        if not (0.0 < self.shrink < 1.0 < self.expand):
            raise ValueError(f"need 0 < shrink < 1 < expand, got shrink={self.shrink}, "
                             f"expand={self.expand}")
        self.cg_iterations = positive_int(cg_iterations, "cg_iterations")

    def _reset_state(self):
        self.radius = self.radius0
        self.qn = QuasiNewtonModel(self.model, self.memory)

    def _state_size(self):
        return self.qn.S[0].size if self.qn.S else None

    def rules(self, rho, step_norm, accepted, radius=None):
        """The radius after a trial with ratio ``rho`` (from ``radius`` or the current)."""
        return update_radius(self.radius if radius is None else radius, rho, step_norm,
                             accepted, self.low, self.high, self.shrink, self.expand,
                             self.max_radius)

    def propose(self, g, radius, dots):
        """(p, predicted reduction m(0) - m(p)) for the gradient g within ``radius``."""
        if self.subproblem == "steihaug":
            p = steihaug(g, self.qn, radius, dots, self.cg_iterations)
        else:
            p = cauchy_point(g, self.qn, radius, dots)
        pred = -(dots.dot(g, p) + 0.5 * dots.dot(p, self.qn.product(p, dots)))
        return p, pred

    def trial(self, theta, x, f0, g, closure, radius, dots):
        """One trial from x (theta's data) within ``radius``: the model update and the
        ratio test, x moved in place if accepted. Returns a dict with "accepted",
        "rho", "predicted", "step_norm", "loss", "grad" (lp.Params or array at the
        returned x; the incoming grad when rejected), "gvec" (its flat data)."""
        gvec = g
        p, pred = self.propose(gvec, radius, dots)
        step_norm = dots.norm(p)
        out = {"accepted": False, "rho": 0.0, "predicted": pred, "step_norm": step_norm,
               "evaluations": 0}
        if not (pred > 0.0 and step_norm > 0.0):
            return out
        point, xt = _trial(theta, x + p)
        ft, grad_t = _evaluate(closure, point)
        out["evaluations"] = 1
        gt = _vector(grad_t, "closure grad", x.size) if math.isfinite(ft) else None
        if gt is not None and math.isfinite(dots.dot(gt, gt)):
            self.qn.update(p, gt - gvec, dots)
            rho = (f0 - ft) / pred
            out["rho"] = rho
            if rho > self.accept:
                x[...] = xt
                out.update(accepted=True, loss=ft, grad=grad_t, gvec=gt)
        return out

    def _update(self, theta, x, loss, grad, g, gg, closure, space):
        if closure is None:
            raise ValueError("TrustRegion.step needs closure(theta_trial) -> (loss, grad)")
        f0 = _loss(loss)
        if not math.isfinite(f0):
            raise ValueError(f"loss must be finite, got {f0!r}")
        dots = Dots(theta)
        t = self.trial(theta, x, f0, g, closure, self.radius, dots)
        self.radius = self.rules(t["rho"], t["step_norm"], t["accepted"])
        return {"loss": t.get("loss", f0), "grad": t.get("grad", grad),
                "step_size": t["step_norm"] if t["accepted"] else 0.0,
                "evaluations": t["evaluations"], "rho": t["rho"], "accepted": t["accepted"],
                "radius": self.radius, "predicted": t["predicted"]}

    def _state(self):
        d = self.qn.state()
        d["radius"] = float(self.radius)
        return d

    def _load_state(self, d):
        self.qn.load(d)
        r = float(_scalar(d, "radius"))
        if not (math.isfinite(r) and r > 0.0):
            raise ValueError(f"state dict entry 'radius' must be positive, got {r!r}")
        self.radius = r

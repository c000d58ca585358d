"""Optimizers: GD, SGD with momentum, Adam and L-BFGS.

All of them work on ``lp.Params`` and on 1-d float64 or float32 numpy arrays
(the state and every vector of a method keep theta's dtype; inner products
are summed in float64), with one call per iteration::

    info = opt.step(theta, loss, grad, closure)

``theta`` (lp.Params or a writable 1-d float array) is updated in place
(``theta.data`` keeps its buffer); ``grad`` is the gradient at ``theta``
(lp.Params or array of the same length), ``loss`` the objective there, and
``closure(theta_trial) -> (loss, grad)`` evaluates both at a trial point of
the same type as ``theta`` (only L-BFGS calls it; GD, SGD and Adam ignore it
and ``loss``). ``info`` always has

    "loss"        the loss at the returned theta, or None where not evaluated
                  (GD, SGD, Adam);
    "grad"        the gradient at the returned theta (what the closure or the
                  caller gave), or None where not evaluated;
    "step_size"   the learning rate used (L-BFGS: the accepted line-search
                  step t, 0.0 when theta did not move);
    "evaluations" closure calls made by this step;
    "grad_norm"   ||grad|| of the incoming gradient.

Under MPI each rank holds only its own layers in theta and grad. Elementwise
updates are local; every inner product and norm goes through ``Params.dot``
(allreduced, replicated opening layer and head counted once), so all ranks
take the same decisions and the iterates equal those of a one-rank run up to
rounding. The closure must return the global loss (the same on every rank),
as ``ODEResNet.loss_and_grad`` does.

Cheaper line searches: ``opt.step(theta, loss, grad, closure, loss_closure)``
with ``loss_closure(theta_trial) -> loss`` (a forward solve only) lets
L-BFGS evaluate trial points without the adjoint and the gradient, which it
then computes once, at the accepted point. Which trials are worth a full
evaluation is chosen per trial from the acceptance statistics of the run and
the relative cost of a loss-only evaluation (``loss_closure.relative_cost``
where the caller sets it, e.g. 1/3 for serial propagation; 0.5 otherwise).

``state_dict()`` holds only numpy arrays and numbers (np.savez-able; under
MPI each rank saves its own, which holds its own layers);
``load_state_dict(d)`` restores hyperparameters and state, so a resumed run
continues with exactly the same numbers. ``reset()`` forgets the state.
"""

import math
import numbers

import numpy as np

from ._validation import finite_float, positive_int
from .params import Params

__all__ = ["Optimizer", "GD", "SGD", "Adam", "LBFGS", "dot", "norm", "create", "NAMES",
           "DEFAULT_LR"]


# --------------------------------------------------------------------------- helpers

def dot(a, b):
    """Inner product of two parameter vectors: ``Params.dot`` (reduced over
    ranks) when either is lp.Params, numpy's for plain arrays."""
    if isinstance(a, Params):
        return a.dot(b)
    if isinstance(b, Params):
        return b.dot(a)
    return float(np.dot(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)))


def norm(a):
    """2-norm of a parameter vector (``Params.norm`` over all ranks for lp.Params)."""
    return math.sqrt(max(dot(a, a), 0.0))


class _Space:
    """Inner products of flat local vectors laid out like ``theta``.

    For lp.Params the vectors are wrapped (without copying) in a Params of
    theta's layout and distribution, so ``Params.dot`` reduces them.
    """

    __slots__ = ("_probe",)

    def __init__(self, theta):
        self._probe = theta.zeros_like() if isinstance(theta, Params) else None

    def dot(self, a, b):
        if self._probe is None:
            if a.dtype != np.float64:  # float32 parameters: sum in float64
                a, b = a.astype(np.float64), np.asarray(b, dtype=np.float64)
            return float(np.dot(a, b))
        self._probe.data = a  # a view, no copy
        return self._probe.dot(b)

    def norm(self, a):
        return math.sqrt(max(self.dot(a, a), 0.0))


def _theta_data(theta):
    """The flat buffer of theta that the step updates in place."""
    if isinstance(theta, Params):
        return theta.data
    if (not isinstance(theta, np.ndarray) or theta.dtype not in (np.float64, np.float32)
            or theta.ndim != 1):
        raise ValueError("theta must be lp.Params or a 1-d float64 or float32 numpy array, got "
                         f"{type(theta).__name__} {getattr(theta, 'dtype', '')} "
                         f"{getattr(theta, 'shape', '')}")
    if not theta.flags.writeable:
        raise ValueError("theta must be writable (it is updated in place)")
    if theta.size == 0:
        raise ValueError("theta is empty")
    return theta


def _vector(v, name, size, dtype=np.float64):
    """The flat data of a gradient (lp.Params or array) of ``size`` entries, in
    theta's ``dtype`` (so every vector of the method, and its state, keeps the
    parameters' precision)."""
    if isinstance(v, Params):
        a = v.data if v.dtype == dtype else v.data.astype(dtype)
    else:
        try:
            a = np.asarray(v, dtype=dtype)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} is not an array of numbers: {exc}") from None
    if a.ndim != 1 or a.shape[0] != size:
        raise ValueError(f"{name} must be a vector of length {size} like theta, "
                         f"got shape {a.shape}")
    return a


def _loss(value, name="loss"):
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.ndarray)):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    a = np.asarray(value, dtype=np.float64)
    if a.size != 1:
        raise ValueError(f"{name} must be a scalar, got shape {a.shape}")
    return float(a.reshape(()))


def _evaluate(closure, trial):
    out = closure(trial)
    try:
        J, g = out
    except (TypeError, ValueError):
        raise ValueError("closure(theta) must return (loss, grad)") from None
    return _loss(J, "closure loss"), g


def _evaluate_loss(loss_closure, trial):
    return _loss(loss_closure(trial), "loss_closure value")


def _trial(theta, values):
    """A new point of theta's type (a fresh Params of its layout and distribution)
    holding ``values``; returns (the point, its flat data)."""
    if isinstance(theta, Params):
        p = theta.zeros_like()
        p.data[...] = values
        return p, p.data
    return values, values


def _scalar(d, key):
    """A number from a state dict (Python or 0-d numpy, as np.load gives it)."""
    if key not in d:
        raise ValueError(f"state dict lacks {key!r}")
    a = np.asarray(d[key])
    if a.size != 1:
        raise ValueError(f"state dict entry {key!r} must be a number, got shape {a.shape}")
    return a.reshape(()).item()


def _array(d, key, ndim):
    """A copy of a state array: float32 stays float32 (the state of a float32
    network), anything else becomes float64."""
    if key not in d:
        raise ValueError(f"state dict lacks {key!r}")
    raw = np.asarray(d[key])
    a = np.array(raw, dtype=np.float32 if raw.dtype == np.float32 else np.float64)  # a copy
    if a.ndim != ndim:
        raise ValueError(f"state dict entry {key!r} must be {ndim}-dimensional, "
                         f"got shape {a.shape}")
    return a


def _fraction(value, name, open_low=False):
    """A float in [0, 1) (or (0, 1) with open_low)."""
    v = finite_float(value, name)
    if not ((0.0 < v if open_low else 0.0 <= v) and v < 1.0):
        raise ValueError(f"{name} must be in {'(0' if open_low else '[0'}, 1), got {value!r}")
    return v


# --------------------------------------------------------------------------- base class

class Optimizer:
    """Base class: argument parsing, the step counter, state dicts.

    Subclasses set ``_hyper`` (names of the hyperparameters, which
    ``_configure(**kw)`` validates) and implement ``_update``,
    ``_reset_state``, ``_state`` and ``_load_state``.
    """

    _hyper = ()
    _vectors = ()  # state entries laid out like theta (rows of them for 2-d entries)
    _needs_loss = False

    def __init__(self, **hyper):
        self._configure(**hyper)
        self.reset()

    def _configure(self, **hyper):
        raise NotImplementedError

    def reset(self):
        """Forget all state (moments, memory, step counter)."""
        self.iterations = 0
        self._reset_state()

    def step(self, theta, loss, grad, closure=None, loss_closure=None):
        """One iteration: update ``theta.data`` in place; return the info dict
        (module docstring). ``grad`` may be None (and, for L-BFGS, ``loss``)
        when a closure is given: it is then evaluated at theta first (counted
        in "evaluations"). ``loss_closure(theta_trial) -> loss`` (optional,
        used by L-BFGS) evaluates the loss alone. A gradient with NaN or Inf
        raises ValueError."""
        x = _theta_data(theta)
        self._match_dtype(x.dtype)
        evaluations = 0
        if grad is None or (self._needs_loss and loss is None):
            if closure is None:
                raise ValueError("grad (and, for L-BFGS, loss) is None and no closure was given")
            loss, grad = _evaluate(closure, theta)
            evaluations = 1
        g = _vector(grad, "grad", x.size, x.dtype)
        self._check_size(x.size)
        space = _Space(theta)
        gg = space.dot(g, g)  # one reduction, also the finiteness check on every rank alike
        if not math.isfinite(gg):
            raise ValueError("grad contains NaN or Inf")
        self._loss_closure = loss_closure
        try:
            info = self._update(theta, x, loss, grad, g, gg, closure, space)
        finally:
            self._loss_closure = None
        info["evaluations"] += evaluations
        info["grad_norm"] = math.sqrt(gg)
        self.iterations += 1
        return info

    def state_dict(self):
        """Hyperparameters, step counter and state as numbers and numpy arrays (copies)."""
        d = {name: getattr(self, name) for name in self._hyper}
        d["iterations"] = int(self.iterations)
        d.update(self._state())
        return d

    def load_state_dict(self, d):
        """Restore what ``state_dict`` gave (also after np.savez / np.load).
        A bad entry raises ValueError and leaves the optimizer as it was."""
        backup = self.state_dict()
        try:
            self._load(d)
        except Exception:
            self._load(backup)
            raise

    def _load(self, d):
        self._configure(**{name: _scalar(d, name) for name in self._hyper})
        it = _scalar(d, "iterations")
        if isinstance(it, bool) or not float(it).is_integer() or it < 0:
            raise ValueError("state dict entry 'iterations' must be a nonnegative integer, "
                             f"got {it!r}")
        self._reset_state()
        self._load_state(d)
        self.iterations = int(it)

    def _state_size(self):
        return None

    def _match_dtype(self, dtype):
        """Cast state vectors (e.g. loaded from a state dict of the other
        precision) to theta's dtype."""
        for name in getattr(self, "_vectors", ()):
            v = getattr(self, name, None)
            if isinstance(v, np.ndarray) and v.dtype != dtype:
                setattr(self, name, v.astype(dtype))

    def _check_size(self, n):
        m = self._state_size()
        if m is not None and m != n:
            raise ValueError(f"theta has {n} entries but the optimizer state was built for {m}; "
                             "call reset() for a new parameter vector")

    def _reset_state(self):
        pass

    def _state(self):
        return {}

    def _load_state(self, d):
        pass

    def __repr__(self):
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._hyper)
        return f"{type(self).__name__}({args})"


def _plain_info(lr):
    return {"loss": None, "grad": None, "step_size": lr, "evaluations": 0}


# --------------------------------------------------------------------------- GD, SGD, Adam

class GD(Optimizer):
    """Gradient descent: x <- x - lr g."""

    _hyper = ("lr",)

    def __init__(self, lr):
        super().__init__(lr=lr)

    def _configure(self, lr):
        self.lr = finite_float(lr, "lr", strictly_positive=True)

    def _update(self, theta, x, loss, grad, g, gg, closure, space):
        x -= self.lr * g
        return _plain_info(self.lr)


class SGD(Optimizer):
    """Gradient descent with (heavy-ball or Nesterov) momentum mu = ``momentum``.

        v <- mu v + g            (v = 0 before the first step, so v_1 = g)
        x <- x - lr v            (nesterov=False)
        x <- x - lr (g + mu v)   (nesterov=True, with the updated v)

    momentum=0 is plain gradient descent.
    """

    _hyper = ("lr", "momentum", "nesterov")
    _vectors = ("velocity",)

    def __init__(self, lr, momentum=0.9, nesterov=False):
        super().__init__(lr=lr, momentum=momentum, nesterov=nesterov)

    def _configure(self, lr, momentum, nesterov):
        self.lr = finite_float(lr, "lr", strictly_positive=True)
        self.momentum = _fraction(momentum, "momentum")
        if not isinstance(nesterov, (bool, np.bool_)):
            raise ValueError(f"nesterov must be True or False, got {nesterov!r}")
        self.nesterov = bool(nesterov)

    def _reset_state(self):
        self.velocity = None

    def _state_size(self):
        return None if self.velocity is None else self.velocity.size

    def _update(self, theta, x, loss, grad, g, gg, closure, space):
        if self.velocity is None:
            self.velocity = np.zeros_like(x)
        v = self.velocity
        v *= self.momentum
        v += g
        if self.nesterov:
            x -= self.lr * (g + self.momentum * v)
        else:
            x -= self.lr * v
        return _plain_info(self.lr)

    def _state(self):
        return {"velocity": np.zeros(0) if self.velocity is None else self.velocity.copy()}

    def _load_state(self, d):
        v = _array(d, "velocity", 1)
        self.velocity = v if v.size else None


class Adam(Optimizer):
    """Adam with bias correction; t counts the steps (t = 1 on the first):

        m <- beta1 m + (1 - beta1) g,      v <- beta2 v + (1 - beta2) g*g
        x <- x - lr (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)

    (m = v = 0 before the first step, so its update is lr g/(|g| + eps),
    i.e. lr sign(g) where |g| >> eps.)
    """

    _hyper = ("lr", "beta1", "beta2", "eps")
    _vectors = ("m", "v")

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        super().__init__(lr=lr, beta1=beta1, beta2=beta2, eps=eps)

    def _configure(self, lr, beta1, beta2, eps):
        self.lr = finite_float(lr, "lr", strictly_positive=True)
        self.beta1 = _fraction(beta1, "beta1")
        self.beta2 = _fraction(beta2, "beta2")
        self.eps = finite_float(eps, "eps", strictly_positive=True)

    def _reset_state(self):
        self.m = None
        self.v = None

    def _state_size(self):
        return None if self.m is None else self.m.size

    def _update(self, theta, x, loss, grad, g, gg, closure, space):
        if self.m is None:
            self.m, self.v = np.zeros_like(x), np.zeros_like(x)
        t = self.iterations + 1
        m, v = self.m, self.v
        m *= self.beta1
        m += (1.0 - self.beta1) * g
        v *= self.beta2
        v += (1.0 - self.beta2) * (g * g)
        bc1 = 1.0 - self.beta1 ** t
        bc2 = 1.0 - self.beta2 ** t
        denom = np.sqrt(v / bc2)
        denom += self.eps
        x -= (self.lr / bc1) * (m / denom)
        return _plain_info(self.lr)

    def _state(self):
        if self.m is None:
            return {"m": np.zeros(0), "v": np.zeros(0)}
        return {"m": self.m.copy(), "v": self.v.copy()}

    def _load_state(self, d):
        m, v = _array(d, "m", 1), _array(d, "v", 1)
        if m.shape != v.shape:
            raise ValueError(f"state dict entries 'm' {m.shape} and 'v' {v.shape} differ in shape")
        if m.size:
            self.m, self.v = m, v


# --------------------------------------------------------------------------- L-BFGS

class LBFGS(Optimizer):
    """Limited-memory BFGS with a backtracking Armijo line search.

    Direction (two-loop recursion over the stored pairs (s_i, y_i), oldest
    to newest, rho_i = 1/(s_i^T y_i)):

        q = g;  for i newest..oldest: a_i = rho_i s_i^T q;  q -= a_i y_i
        r = gamma q,  gamma = s^T y / y^T y of the newest pair (1 with no pairs)
        for i oldest..newest: b = rho_i y_i^T r;  r += (a_i - b) s_i
        d = -r

    If g^T d >= 0 (not a descent direction; also NaN) the memory is reset
    and d = -g. Line search: trials t = t0, t0 backtrack, ...,
    t0 backtrack^max_backtracks (at most max_backtracks + 1 closure calls);
    the first t with finite J(x + t d) <= J(x) + c1 t g^T d and a finite
    gradient there is accepted. t0 = lr, except with an empty memory (first
    step, after a reset) where t0 = lr min(1, 1/||g||), so that trial step
    is at most lr long. If no trial is accepted, x is left unchanged, the
    memory reset, and info["line_search_failed"] is True (info "loss" and
    "grad" are then the incoming ones).

    Update: with s = x_new - x (the exact displacement) and y = g_new - g,
    the pair is stored (the oldest dropped beyond ``memory``) when
    s^T y > curvature_eps ||s|| ||y||; otherwise it is skipped and
    info["skipped_update"] is True. The gradient g_new from the closure at
    the accepted point is returned as info["grad"] (and its loss as
    info["loss"]), so the caller need not recompute it.

    Trial evaluations (with a ``loss_closure`` passed to ``step``): trial k
    of a line search gets a full evaluation (loss and gradient) or the loss
    alone, followed by a full one only if it is accepted.
    ``trial_evaluations="full"`` always evaluates fully (as without a
    loss_closure), ``"loss"`` always loss-first, ``"auto"`` (default) picks per
    trial the one of lower expected cost: full costs 1, loss-first costs
    r + p (r = ``loss_closure.relative_cost``, 0.5 if unset; p = the estimated
    probability that trial k is accepted, counted over this run's line
    searches for the first trial and for the later ones, with a prior of one
    acceptance for first trials and one acceptance and one rejection for later
    ones). Most L-BFGS steps accept their
    first trial, so the first trial is usually full and the backtracking ones
    loss-only. The choice depends only on counts and r, so every rank and a
    resumed run take the same decisions (the counts are in the state dict).

    Extra info: "step_norm" ||s||, "skipped_update", "line_search_failed",
    "memory_reset", "memory" (pairs stored after the step), "trials" (trial
    points tried), "loss_evaluations" (loss-only closure calls, also counted
    in "evaluations"). A zero gradient is a stationary point: nothing moves
    and no closure call is made.
    """

    _hyper = ("memory", "lr", "c1", "backtrack", "max_backtracks", "curvature_eps")
    _vectors = ("S", "Y")
    _needs_loss = True

    TRIAL_EVALUATIONS = ("auto", "full", "loss")

    def __init__(self, memory=5, lr=1.0, c1=1e-4, backtrack=0.5, max_backtracks=30,
                 curvature_eps=1e-10, trial_evaluations="auto"):
        if trial_evaluations not in self.TRIAL_EVALUATIONS:
            raise ValueError(f"trial_evaluations must be one of "
                             f"{', '.join(self.TRIAL_EVALUATIONS)}; got {trial_evaluations!r}")
        self.trial_evaluations = trial_evaluations
        super().__init__(memory=memory, lr=lr, c1=c1, backtrack=backtrack,
                         max_backtracks=max_backtracks, curvature_eps=curvature_eps)

    def _configure(self, memory, lr, c1, backtrack, max_backtracks, curvature_eps):
        self.memory = positive_int(memory, "memory")
        self.lr = finite_float(lr, "lr", strictly_positive=True)
        self.c1 = _fraction(c1, "c1", open_low=True)
        self.backtrack = _fraction(backtrack, "backtrack", open_low=True)
        if (isinstance(max_backtracks, bool) or not isinstance(max_backtracks, numbers.Integral)
                or max_backtracks < 0):
            raise ValueError("max_backtracks must be a nonnegative integer, "
                             f"got {max_backtracks!r}")
        self.max_backtracks = int(max_backtracks)
        self.curvature_eps = finite_float(curvature_eps, "curvature_eps", minimum=0.0)

    def _reset_state(self):
        self._s, self._y, self._rho = [], [], []
        self._gamma = 1.0
        # Line-search statistics: [tried, accepted] for first trials and later ones.
        self._trial_counts = np.zeros((2, 2), dtype=np.int64)

    def _state_size(self):
        return self._s[0].size if self._s else None

    def _full_trial(self, k):
        """Whether trial k (0 = first) gets a full evaluation (see the class doc)."""
        if self._loss_closure is None or self.trial_evaluations == "full":
            return True
        if self.trial_evaluations == "loss":
            return False
        tried, accepted = self._trial_counts[min(k, 1)]
        # Prior: a first trial is expected to be accepted (L-BFGS's unit step
        # usually is), a backtracking one half the time.
        p = (accepted + 1.0) / (tried + (1.0 if k == 0 else 2.0))
        r = getattr(self._loss_closure, "relative_cost", 0.5)
        return 1.0 < r + p

    def _direction(self, g, space):
        q = g.copy()
        alphas = []
        for s, y, rho in zip(reversed(self._s), reversed(self._y), reversed(self._rho)):
            a = rho * space.dot(s, q)
            q -= a * y
            alphas.append(a)
        q *= self._gamma
        for s, y, rho, a in zip(self._s, self._y, self._rho, reversed(alphas)):
            b = rho * space.dot(y, q)
            q += (a - b) * s
        q *= -1.0
        return q

    def _update(self, theta, x, loss, grad, g, gg, closure, space):
        if closure is None:
            raise ValueError("LBFGS.step needs closure(theta_trial) -> (loss, grad)")
        f0 = _loss(loss)
        if not math.isfinite(f0):
            raise ValueError(f"loss must be finite, got {f0!r}")
        info = {"loss": f0, "grad": grad, "step_size": 0.0, "evaluations": 0, "step_norm": 0.0,
                "skipped_update": False, "line_search_failed": False, "memory_reset": False}
        if gg == 0.0:  # stationary point
            info["memory"] = len(self._s)
            return info

        if self._s:
            d = self._direction(g, space)
            gd = space.dot(g, d)
            if not gd < 0.0:
                self._forget_pairs()
                info["memory_reset"] = True
        if not self._s:
            d, gd = -g, -gg
        t = self.lr if self._s else self.lr * min(1.0, 1.0 / math.sqrt(gg))

        accepted = None
        info["loss_evaluations"] = 0
        trials = 0
        for k in range(self.max_backtracks + 1):
            if k:
                t *= self.backtrack
            point, xt = _trial(theta, x + t * d)
            full = self._full_trial(k)
            if full:
                ft, grad_t = _evaluate(closure, point)
            else:
                ft = _evaluate_loss(self._loss_closure, point)
                info["loss_evaluations"] += 1
            info["evaluations"] += 1
            trials += 1
            ok = math.isfinite(ft) and ft <= f0 + self.c1 * t * gd
            self._trial_counts[min(k, 1)] += (1, int(ok))
            if ok and not full:  # the gradient only here, at the accepted point
                ft_full, grad_t = _evaluate(closure, point)
                info["evaluations"] += 1
                ok = math.isfinite(ft_full)
                ft = ft_full
            if ok:
                gt = _vector(grad_t, "closure grad", x.size, x.dtype)
                if math.isfinite(space.dot(gt, gt)):
                    accepted = (xt, ft, grad_t, gt)
                    break

        info["trials"] = trials
        if accepted is None:
            self._forget_pairs()
            info.update(line_search_failed=True, memory_reset=True, memory=0)
            return info

        xt, ft, grad_t, gt = accepted
        s = xt - x
        y = gt - g
        ss, yy, sy = space.dot(s, s), space.dot(y, y), space.dot(s, y)
        if sy > self.curvature_eps * math.sqrt(ss) * math.sqrt(yy) and math.isfinite(sy):
            if len(self._s) == self.memory:
                del self._s[0], self._y[0], self._rho[0]
            self._s.append(s)
            self._y.append(y)
            self._rho.append(1.0 / sy)
            self._gamma = sy / yy
        else:
            info["skipped_update"] = True
        x[...] = xt
        info.update(loss=ft, grad=grad_t, step_size=t, step_norm=math.sqrt(ss),
                    memory=len(self._s))
        return info

    def _match_dtype(self, dtype):
        if self._s and self._s[0].dtype != dtype:
            self._s = [a.astype(dtype) for a in self._s]
            self._y = [a.astype(dtype) for a in self._y]

    def _forget_pairs(self):
        counts = self._trial_counts
        self._reset_state()
        self._trial_counts = counts

    def _state(self):
        n = self._s[0].size if self._s else 0
        return {"S": np.array(self._s).reshape(len(self._s), n),
                "Y": np.array(self._y).reshape(len(self._y), n),
                "rho": np.array(self._rho, dtype=np.float64),
                "gamma": float(self._gamma),
                "trial_counts": self._trial_counts.copy()}

    def _load_state(self, d):
        S, Y, rho = _array(d, "S", 2), _array(d, "Y", 2), _array(d, "rho", 1)
        if S.shape != Y.shape or rho.shape != (S.shape[0],):
            raise ValueError(f"state dict entries S {S.shape}, Y {Y.shape}, rho {rho.shape} "
                             "do not match")
        if S.shape[0] > self.memory:
            raise ValueError(f"state dict holds {S.shape[0]} pairs, more than memory={self.memory}")
        gamma = float(_scalar(d, "gamma"))
        if not (math.isfinite(gamma) and gamma > 0.0):
            raise ValueError(f"state dict entry 'gamma' must be positive, got {gamma!r}")
        self._s = [row.copy() for row in S]
        self._y = [row.copy() for row in Y]
        self._rho = [float(r) for r in rho]
        self._gamma = gamma
        if "trial_counts" in d:  # absent in state dicts of earlier versions
            c = np.asarray(d["trial_counts"])
            if c.shape != (2, 2) or (c < 0).any() or (c[:, 1] > c[:, 0]).any():
                raise ValueError(f"state dict entry 'trial_counts' must be 2x2 counts "
                                 f"[tried, accepted], got {c!r}")
            self._trial_counts = c.astype(np.int64)


# --------------------------------------------------------------------------- by name

NAMES = ("lbfgs", "adam", "sgd", "gd")
DEFAULT_LR = {"lbfgs": 1.0, "adam": 1e-2, "sgd": 1e-2, "gd": 1e-1}


def create(name, lr=None, **options):
    """An optimizer by name: ``create("adam", lr=1e-3)``.

    ``name`` is one of ``NAMES`` (case-insensitive); ``lr`` defaults to
    ``DEFAULT_LR[name]``; the other keyword arguments go to the class
    (``memory`` for L-BFGS, ``momentum``/``nesterov`` for SGD, ``beta1``,
    ``beta2`` for Adam). An optimizer instance is returned unchanged.
    """
    if isinstance(name, Optimizer):
        if lr is not None or options:
            raise ValueError("optimizer: options are only accepted with a name")
        return name
    if not isinstance(name, str) or name.lower() not in NAMES:
        raise ValueError(f"optimizer must be an lp.optim optimizer or one of "
                         f"{', '.join(NAMES)}; got {name!r}")
    key = name.lower()
    cls = {"lbfgs": LBFGS, "adam": Adam, "sgd": SGD, "gd": GD}[key]
    return cls(lr=DEFAULT_LR[key] if lr is None else lr, **options)

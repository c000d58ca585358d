"""lp.steps: MGRIT over training steps.

Serial training ``w_{i+1} = Phi_i(w_i)``, ``i = 0..N-1``, is the same
lower-bidiagonal system as the propagation over layers, with the weight
vector as the state. :func:`solve` hands it to the same compiled MGRIT engine
(``layerparallel::MGRIT``) that solves the layers, distributed over MPI ranks
by contiguous blocks of steps, and converges to exactly the weights serial
training produces.

``phi`` is a built-in problem whose step runs in C++ (:class:`XOR`,
:class:`BinaryAddition`) or any Python callable ``phi(level, step, w)``::

    import layerparallel as lp
    xor = lp.steps.XOR()
    res = lp.steps.solve(xor, None, 1600, cycle="F", solver="solver1")
    res.iterations, res.rho, res.potential_speedup             # 7, 0.065, 0.87
    abs(res.weights - xor.serial(1600, solver="solver1")).max()   # ~2e-10

The built-in problems train a bias-free sigmoid MLP (a bias is a constant
input column) on the summed squared error ``E = 1/2 sum (a_L - y)^2`` by
gradient descent, ``W <- W - alpha dE/dW``; one step is a pass over its data
in mini-batches. The solver presets choose the learning rate and the data of
a step on level ``l`` (stride ``s = c^l`` level-0 steps):

=========  ==================================  ==================================
preset     learning rate alpha_l               data of step i
=========  ==================================  ==================================
naive      alpha_base                          all data
solver1    min(s alpha_base, alpha_max)        all data
solver2    min(s alpha_base, alpha_max)        data unit i mod K
solver3    min(s alpha_base, alpha_max)        data unit floor(i/2) mod K
=========  ==================================  ==================================

(``s = 2^l`` for the coarsening factor 2.) On a coarse level the step index
``i`` is either the level-local index (``mapping="local"``: coarse step k
uses i = k) or the level-0 index of the step's left point injected from the
fine grid (``mapping="injected"``: i = k c^l); level 0 is the same for both.
The index is that of the step's start point (``index_point="start"``: the
step w_i -> w_{i+1} trains on unit i mod K, the paper's equation (13)) or of
its end point (``index_point="end"``: w_{i-1} -> w_i trains on unit i mod K,
the step as block row i of the global system, equation (5)); with "end" the
same shift holds on every level (coarse step k -> k+1 uses k+1).
"""

import math
import numbers

import numpy as np

from . import _collective as collective
from . import _core, datasets
from . import _validation as check
from .mgrit import MGRIT, PropagatorResult, critical_path, solve_propagator
from .mgrit import potential_speedup as _mgrit_speedup

SOLVERS = ("naive", "solver1", "solver2", "solver3")
CYCLES = ("two", "V", "F")
MAPPINGS = ("local", "injected")
INDEX_POINTS = ("start", "end")
_PRESETS = {  # data mode, scaled learning rate
    "naive": ("all", False),
    "solver1": ("all", True),
    "solver2": ("cycle", True),
    "solver3": ("cycle_twice", True),
}


class Problem:
    """A bias-free sigmoid MLP trained by gradient steps, the step in C++.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths ``n_0 .. n_L`` (``n_0`` counts a bias column of X).
    X, Y : arrays (n, n_0) and (n, n_L)
    batch_size : int or None
        Mini-batch inside one step (None: one batch of all the step's data).
    unit : int
        Examples per data unit of solver2/solver3 (K = n / unit units).
    seed : int
        Seed of the initial weights: ``W_l = 2 U[0,1) - 1`` drawn layer by
        layer from ``numpy.random.RandomState(seed)`` (the classic
        ``np.random.seed(1); syn0 = 2*np.random.random((3,4)) - 1`` code).
    alpha_base, alpha_max : float
        The problem's default learning rates.
    reduction : "sum" | "mean"
        The loss of a mini-batch: 1/2 the summed squared error, or that sum
        divided by the mini-batch's examples.
    """

    name = "mlp"

    def __init__(self, sizes, X, Y, batch_size=None, unit=1, seed=1, alpha_base=1.0,
                 alpha_max=8.0, reduction="sum"):
        if not isinstance(sizes, (list, tuple)) or len(sizes) < 2:
            raise ValueError(f"sizes must be a list of two or more layer widths, got {sizes!r}")
        self.sizes = [check.positive_int(s, "sizes") for s in sizes]
        self.X = check.float_array(X, "X", 2, columns=self.sizes[0])
        self.Y = check.float_array(Y, "Y", 2, columns=self.sizes[-1], rows=self.X.shape[0])
        n = self.X.shape[0]
        self.batch_size = n if batch_size is None else check.positive_int(batch_size,
                                                                           "batch_size")
        self.unit = check.positive_int(unit, "unit", n)
        if n % self.unit:
            raise ValueError(f"unit must divide the number of examples ({n}), got {unit!r}")
        self.seed = check.seed(seed)
        self.reduction = check.choice(reduction, "reduction", ("sum", "mean"))
        self.alpha_base, self.alpha_max = _alphas(alpha_base, alpha_max)
        self.n_weights = sum(a * b for a, b in zip(self.sizes[:-1], self.sizes[1:]))

    @property
    def n_examples(self):
        return self.X.shape[0]

    @property
    def n_units(self):
        """K: the data units solver2/solver3 cycle through."""
        return self.n_examples // self.unit

    def initial_weights(self, seed=None):
        """w_0: the flat weight vector drawn from ``seed`` (default: the problem's)."""
        rs = np.random.RandomState(self.seed if seed is None else check.seed(seed))
        return np.concatenate([(2.0 * rs.random_sample((a, b)) - 1.0).ravel()
                               for a, b in zip(self.sizes[:-1], self.sizes[1:])])

    def unpack(self, w):
        """The weight matrices W_1 .. W_L (views of w)."""
        w = self._weights(w, "w")
        out, k = [], 0
        for a, b in zip(self.sizes[:-1], self.sizes[1:]):
            out.append(w[k:k + a * b].reshape(a, b))
            k += a * b
        return out

    def _weights(self, w, name):
        return check.float_array(w, name, 1, rows=self.n_weights)

    def app(self, solver="solver1", alpha_base=None, alpha_max=None, mapping="local",
            index_point="start"):
        """The compiled step of a preset (what :func:`solve` hands the engine)."""
        solver = check.choice(solver, "solver", SOLVERS)
        mapping = check.choice(mapping, "mapping", MAPPINGS)
        index_point = check.choice(index_point, "index_point", INDEX_POINTS)
        ab, am = _alphas(self.alpha_base if alpha_base is None else alpha_base,
                         self.alpha_max if alpha_max is None else alpha_max)
        data, scale = _PRESETS[solver]
        return _core.MLPSteps(self.sizes, self.X, self.Y, self.batch_size, self.unit, ab, am,
                              scale, data, mapping, self.reduction == "mean", index_point)

    def phi(self, solver="solver1", alpha_base=None, alpha_max=None, mapping="local",
            cfactor=2, index_point="start"):
        """The step as a Python callable ``phi(level, step, w)`` for :func:`solve`
        (or lp.solve): level ``l`` steps from level-0 point ``step`` over
        ``cfactor^l`` points, exactly as the compiled app does."""
        app = self.app(solver, alpha_base, alpha_max, mapping, index_point)
        cf = check.cfactors(cfactor)

        def phi(level, step, w):
            return app.step(level, step, step + _stride(cf, level),
                            np.ascontiguousarray(w, dtype=np.float64))

        return phi

    def step(self, level, step, w, solver="solver1", alpha_base=None, alpha_max=None,
             mapping="local", cfactor=2, index_point="start"):
        """One Phi on ``level`` from level-0 point ``step`` (stride cfactor^level)."""
        for name, value in (("level", level), ("step", step)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
                raise ValueError(f"{name} must be a nonnegative integer, got {value!r}")
        return self.phi(solver, alpha_base, alpha_max, mapping, cfactor, index_point)(
            int(level), int(step), self._weights(w, "w"))

    def serial(self, n_steps, w0=None, solver="solver1", alpha_base=None, alpha_max=None,
               all_states=False, index_point="start"):
        """Serial training: w_N after n_steps level-0 steps from w0 (the reference
        MGRIT converges to), or all of w_0..w_N, shape (n_steps + 1, n_weights);
        ``index_point`` as in :func:`solve` (it shifts the data order of solver2/3)."""
        n_steps = check.positive_int(n_steps, "n_steps")
        w0 = self.initial_weights() if w0 is None else self._weights(w0, "w0")
        return self.app(solver, alpha_base, alpha_max,
                        index_point=index_point).train(n_steps, w0, bool(all_states))

    def loss(self, w):
        """E(w) = 1/2 the squared error summed over all examples (averaged with
        reduction "mean")."""
        return self.app().loss(self._weights(w, "w"))

    def predict(self, w, X=None):
        """The network's outputs a_L on X (default: the problem's inputs)."""
        X = self.X if X is None else check.float_array(X, "X", 2, columns=self.sizes[0])
        a = X
        for W in self.unpack(w):
            a = 1.0 / (1.0 + np.exp(-(a @ W)))
        return a

    def __repr__(self):
        return (f"{type(self).__name__}(sizes={self.sizes}, examples={self.n_examples}, "
                f"paper={getattr(self, 'paper', False)}, "
                f"batch_size={self.batch_size}, unit={self.unit}, seed={self.seed}, "
                f"reduction={self.reduction!r}, "
                f"alpha_base={self.alpha_base}, alpha_max={self.alpha_max})")


class XOR(Problem):
    """XOR with the classic 3-4-1 sigmoid network of the seed paper's appendix.

    Inputs are ``[x1, x2, 1]`` (the constant third input is the bias; no other
    biases), 4 examples, batch training: one step is one gradient step on the
    summed squared error of all 4 examples (``syn0 += X.T @ l1_delta`` with a
    learning rate); solver2/solver3 step on one example. Default rates: the
    paper text's alpha_base = 1.0 with alpha_max = 8.
    """

    name = "xor"

    def __init__(self, seed=1, alpha_base=1.0, alpha_max=8.0, hidden=4, reduction="sum"):
        X, Y = datasets.xor()
        X = np.hstack([X, np.ones((X.shape[0], 1))])
        super().__init__([3, check.positive_int(hidden, "hidden"), 1], X, Y, batch_size=None,
                         unit=1, seed=seed, alpha_base=alpha_base, alpha_max=alpha_max,
                         reduction=reduction)


class BinaryAddition(Problem):
    """Addition of two 12-bit numbers with a 24-128-64-12 sigmoid network.

    The package's variant (``paper=False``): ``n`` random pairs from
    ``lp.datasets.binary_addition(n, bits, data_seed)`` (inputs: the bits of
    a and b, no bias column; targets: the bits of a + b), weights ``2 U - 1``
    from ``RandomState(seed)``. One step of the batch presets (naive,
    solver1) is a pass over all examples in mini-batches of ``batch_size``
    (50 mini-batches of 10 by default). For solver2/solver3 the data units
    are the ``unit`` consecutive examples of one mini-batch (K = 50): step i
    trains on mini-batch i mod 50 or floor(i/2) mod 50. The mini-batch loss
    is averaged over its examples (``reduction="mean"``). Default rates
    alpha_base = 0.025, alpha_max = 0.2 (the paper's).

    ``paper=True``: the serial code the training-steps paper builds on (the
    "plain vanilla" binary-addition network it cites): ``RandomState(seed)``
    (seed 1) draws ``a, b = floor(2^(bits-1) U)`` (n each, a first), then the
    weights ``0.2 N(0,1) - 0.1`` layer by layer; bits most significant
    first; mini-batches of 10, the summed loss (``W -= alpha x^T delta``); the
    data unit of solver2/solver3 is one example (K = n = 500: "the first 500
    training steps train over the first 500 training data sets").
    ``examples`` keeps only the first that many pairs (the paper's Table 13
    uses 50). ``data_seed``, ``unit`` and ``reduction`` are then fixed.
    """

    name = "binary_addition"

    def __init__(self, n=500, bits=12, data_seed=0, seed=1, hidden=(128, 64), batch_size=10,
                 unit=None, alpha_base=0.025, alpha_max=0.2, reduction=None, paper=False,
                 examples=None):
        if not isinstance(hidden, (list, tuple)) or not hidden:
            raise ValueError(f"hidden must be a non-empty list of widths, got {hidden!r}")
        hidden = [check.positive_int(h, "hidden") for h in hidden]
        self.paper = bool(paper)
        if self.paper:
            if unit not in (None, 1) or reduction not in (None, "sum"):
                raise ValueError("paper=True fixes unit=1 and reduction='sum'")
            X, Y, self._paper_w0 = _paper_binary_addition(
                check.positive_int(n, "n"), _bits(bits), check.seed(seed),
                [2 * _bits(bits), *hidden, _bits(bits)])
            unit, reduction = 1, "sum"
        else:
            X, Y = datasets.binary_addition(n=n, bits=bits, seed=data_seed)
            unit = 10 if unit is None else unit
            reduction = "mean" if reduction is None else reduction
        if examples is not None:
            examples = check.positive_int(examples, "examples", X.shape[0])
            X, Y = X[:examples], Y[:examples]
        super().__init__([2 * bits, *hidden, bits], X, Y, batch_size=batch_size, unit=unit,
                         seed=seed, alpha_base=alpha_base, alpha_max=alpha_max,
                         reduction=reduction)

    def initial_weights(self, seed=None):
        """w_0; with paper=True the weights drawn after the data (seed None:
        the problem's)."""
        if self.paper and (seed is None or check.seed(seed) == self.seed):
            return self._paper_w0.copy()
        if self.paper:
            sizes = self.sizes
            return _paper_binary_addition(self.n_examples, sizes[-1], check.seed(seed),
                                          sizes)[2]
        return super().initial_weights(seed)


def _bits(bits):
    if isinstance(bits, bool) or not isinstance(bits, numbers.Integral) or not 2 <= bits <= 30:
        raise ValueError(f"bits must be an integer in 2..30, got {bits!r}")
    return int(bits)


def _paper_binary_addition(n, bits, seed, sizes):
    """The cited serial code's data and initial weights, one RandomState stream."""
    rs = np.random.RandomState(seed)
    a = (rs.rand(n) * 2 ** (bits - 1)).astype(np.int64)
    b = (rs.rand(n) * 2 ** (bits - 1)).astype(np.int64)
    shifts = np.arange(bits - 1, -1, -1, dtype=np.int64)  # most significant bit first

    def to_bits(v):
        return ((v[:, None] >> shifts) & 1).astype(np.float64)

    X = np.concatenate([to_bits(a), to_bits(b)], axis=1)
    w0 = np.concatenate([(rs.randn(p, q) * 0.2 - 0.1).ravel()
                         for p, q in zip(sizes[:-1], sizes[1:])])
    return X, to_bits(a + b), w0


PROBLEMS = {"xor": XOR, "binary_addition": BinaryAddition}


class StepsResult(PropagatorResult):
    """The outcome of :func:`solve`.

    iterations (counted by the solve's conventions), converged, residuals
    (2-norm over level-0 C-points after FCF relaxation; r_0 is the first one
    computed), rho (the average convergence factor (r_last / r_0)^(1/k), k the
    iterations), weights (the final w_N, on every rank), potential_speedup
    (N / (iterations x critical path), the package's model),
    paper_speedup (the paper's equations (18)-(19)), speedup(model),
    critical_path (sequential Phi applications of one iteration), levels,
    steps (Phi applications on this rank), state(p) for owned points.
    """

    def __init__(self, engine, info, n_steps, weights, per_iteration, levels, settings):
        super().__init__(engine, info, n_steps)
        self.weights = weights
        self.critical_path = per_iteration
        self.levels = levels
        self.settings = settings

    def speedup(self, model="critical_path"):
        """N over the sequential steps of this solve under ``model``
        ("critical_path" or "paper"; see lp.mgrit.critical_path)."""
        st = self.settings
        return potential_speedup(self.n_steps, self.iterations, cfactor=st["cfactor"],
                                 cycle=st["cycle"], relax=st["relax"],
                                 min_coarse=st["min_coarse"], max_levels=st["max_levels"],
                                 model=model)

    @property
    def potential_speedup(self):
        return self.speedup("critical_path")

    @property
    def paper_speedup(self):
        """The paper's model, or None where it does not apply (cfactor 2, FCF only)."""
        st = self.settings
        if st["relax"] != "FCF" or any(c != 2 for c in check.cfactors(st["cfactor"])):
            return None
        return self.speedup("paper")

    def __repr__(self):
        return (f"StepsResult(n_steps={self.n_steps}, iterations={self.iterations}, "
                f"converged={self.converged}, rho={self.rho:.3g}, "
                f"potential_speedup={self.potential_speedup:.3g})")


def _alphas(alpha_base, alpha_max):
    ab = check.finite_float(alpha_base, "alpha_base", strictly_positive=True)
    am = check.finite_float(alpha_max, "alpha_max", strictly_positive=True)
    if am < ab:
        raise ValueError(f"alpha_max must be >= alpha_base ({ab}), got {am!r}")
    return ab, am


def _stride(cf, level):
    s = 1
    for l in range(level):
        s *= cf[min(l, len(cf) - 1)]
    return s


def default_tol(n_steps):
    """The default halting tolerance 1e-9 sqrt(N)."""
    return 1e-9 * math.sqrt(n_steps)


def mgrit_options(n_steps, cfactor=2, cycle="F", tol=None, max_iter=50, relax="FCF",
                  min_coarse=10, max_levels=None, skip_first_down=True, divergence=1e8,
                  comm=None, conventions="package"):
    """The lp.MGRIT of a steps solve (validated; tol None: 1e-9 sqrt(N); 0: exactly
    max_iter iterations)."""
    cycle = check.choice(cycle, "cycle", CYCLES)
    if tol is None:
        tol = default_tol(n_steps)
    else:
        tol = check.finite_float(tol, "tol", minimum=0.0)
    if max_levels is None:
        max_levels = 2 if cycle == "two" else 64
    else:
        max_levels = check.positive_int(max_levels, "max_levels", 64)
        if cycle == "two" and max_levels != 2:
            raise ValueError(f"max_levels must be 2 (or None) for cycle='two', got {max_levels}")
    return MGRIT(cfactor=check.cfactors(cfactor), max_levels=max_levels, min_coarse=min_coarse,
                 relax=relax, cycle="V" if cycle == "two" else cycle,
                 tol=tol if tol > 0.0 else None, rtol=None, max_iter=max_iter, comm=comm,
                 storage="all", warm_start=False, divergence=divergence,
                 skip_first_down=skip_first_down, conventions=conventions)


def solve(phi, w0, n_steps, cfactor=2, cycle="F", tol=None, max_iter=50, solver=None,
          alpha_base=None, alpha_max=None, mapping=None, comm=None, skip_first_down=True,
          relax="FCF", min_coarse=10, max_levels=None, init_guess=None, divergence=1e8,
          conventions="package", index_point=None):
    """Solve serial training w_{i+1} = Phi_i(w_i), i < n_steps, by MGRIT.

    Parameters
    ----------
    phi : Problem (XOR, BinaryAddition, ...) or callable ``phi(level, step, w)``
        A built-in problem runs its step in C++; a callable is called by the
        engine for every step (level ``l`` steps from level-0 point ``step``
        over ``cfactor^l`` points) and defines its own learning rates and data.
    w0 : 1-d array or None
        Initial weights; None means the problem's own (required for a callable).
    n_steps : int
        N, the number of training steps.
    cfactor : int >= 2 (or a list, one per level)
    cycle : "two" (two-level), "V" or "F"
    tol : float or None
        Halt when the residual is <= tol; None: 1e-9 sqrt(N); 0: run exactly
        ``max_iter`` iterations.
    max_iter : int
    solver : "naive" | "solver1" | "solver2" | "solver3" (built-in problems; default solver1)
    alpha_base, alpha_max : float (default: the problem's)
    mapping : "local" | "injected"
        Coarse-level step index of solver2/solver3's data (default "local",
        the paper's Remark 1; "injected" uses the level-0 index).
    index_point : "start" | "end"
        Which point of a step indexes solver2/solver3's data (default "start":
        w_i -> w_{i+1} trains on unit i mod K; "end": on unit (i+1) mod K, the
        step as block row i + 1 of the global system, on every level). Level 0
        changes too, so the serial training solved for changes with it.
    comm : mpi4py communicator or None
        Ranks to distribute the steps over (contiguous blocks).
    skip_first_down : bool
        XBraid's default start (the paper's): skip the first down-cycle
        (inject, solve the coarsest level, interpolate up); r_0 is the
        residual after that start.
    conventions : "package" | "xbraid"
        "package" (default): iterations = residuals - 1, the count of the
        paper's rho formula, with which its tables agree. "xbraid": as
        XBraid's braid_Drive runs and counts (with F-cycles the start runs
        V-cycles on the way up, each residual is followed by its cycle, every
        cycle counts, the start too: two more). See lp.MGRIT.
    relax : "F" | "FCF" | ...
    min_coarse : int
        Coarsen while a level has more than this many steps (coarsest <= 10).
    max_levels : int or None (None: as many as min_coarse allows; 2 for "two")
    init_guess : 1-d array or None
        The initial guess at every step (default w0).

    Returns a :class:`StepsResult`.
    """
    # Checks that may fail on some ranks only are agreed by all (none is left waiting).
    agreeing = comm if hasattr(comm, "Get_size") and comm.Get_size() > 1 else None
    with collective.checks(agreeing, "checking the arguments of lp.steps.solve"):
        n_steps = check.positive_int(n_steps, "n_steps")
        mgrit_options(n_steps, cfactor, cycle, tol, max_iter, relax, min_coarse, max_levels,
                      skip_first_down, divergence, None, conventions)  # checked locally
    mg = mgrit_options(n_steps, cfactor, cycle, tol, max_iter, relax, min_coarse, max_levels,
                       skip_first_down, divergence, comm, conventions)  # collective
    with collective.checks(agreeing, "checking the arguments of lp.steps.solve") as agreed:
        if mg.size > n_steps:
            raise ValueError(f"n_steps ({n_steps}) must be at least the number of ranks "
                             f"({mg.size})")
        if isinstance(phi, Problem):
            solver = "solver1" if solver is None else check.choice(solver, "solver", SOLVERS)
            mapping = ("local" if mapping is None
                       else check.choice(mapping, "mapping", MAPPINGS))
            index_point = ("start" if index_point is None
                           else check.choice(index_point, "index_point", INDEX_POINTS))
            app = phi.app(solver, alpha_base, alpha_max, mapping, index_point)
            w0 = phi.initial_weights() if w0 is None else phi._weights(w0, "w0")
            size = phi.n_weights
            settings = dict(problem=phi.name, solver=solver, mapping=mapping,
                            index_point=index_point,
                            alpha_base=(phi.alpha_base if alpha_base is None
                                        else float(alpha_base)),
                            alpha_max=(phi.alpha_max if alpha_max is None
                                       else float(alpha_max)))
        elif callable(phi):
            for name, value in (("solver", solver), ("alpha_base", alpha_base),
                                ("alpha_max", alpha_max), ("mapping", mapping),
                                ("index_point", index_point)):
                if value is not None:
                    raise ValueError(f"{name} applies to built-in problems only; a Python phi "
                                     "defines its own learning rates and data")
            if w0 is None:
                raise ValueError("w0 is required with a Python phi")
            w0 = check.float_array(w0, "w0", 1)
            size = w0.shape[0]
            settings = dict(problem="callable")
        else:
            raise ValueError(f"phi must be an lp.steps problem or a callable, got {phi!r}")
        guess = w0 if init_guess is None else check.float_array(init_guess, "init_guess", 1,
                                                                rows=size)
        agreed.fingerprint = {"n_steps": n_steps, "weights": size, "settings": settings,
                              "guess": guess.shape}
    options = mg.options()
    if isinstance(phi, Problem):
        engine = _core.StepsSolver(app, n_steps, options, mg._handle)
        info = engine.solve(w0, guess)
    else:
        engine, info = solve_propagator(phi, w0, guess, n_steps, options, mg._handle, agreeing)
    weights = _final_weights(engine, n_steps, size, mg)
    per_iteration, levels = critical_path(n_steps, cfactor=mg.cfactor, max_levels=mg.max_levels,
                                          min_coarse=mg.min_coarse, relax=mg.relax,
                                          cycle=mg.cycle)
    settings.update(cycle=cycle, cfactor=mg.cfactor, relax=mg.relax, tol=mg.tol or 0.0,
                    max_iter=mg.max_iter, min_coarse=mg.min_coarse, max_levels=mg.max_levels,
                    skip_first_down=mg.skip_first_down, conventions=mg.conventions,
                    ranks=mg.size)
    return StepsResult(engine, info, n_steps, weights, per_iteration, levels, settings)


def _final_weights(engine, n_steps, size, mg):
    """w_N on every rank: the owner of point N (the last rank) broadcasts it."""
    if mg.size == 1:
        return engine.state(n_steps)
    buf = engine.state(n_steps) if engine.last_point == n_steps else np.empty(size)
    mg.comm.Bcast(buf, root=mg.size - 1)
    return buf


def potential_speedup(n_steps, iterations, cfactor=2, cycle="F", relax="FCF", min_coarse=10,
                      max_levels=None, model="critical_path"):
    """N / (iterations x sequential Phi applications of one iteration) for a
    steps solve; model "critical_path" (the package's) or "paper"
    (equations (18)-(19)); see lp.mgrit.critical_path."""
    mg = mgrit_options(n_steps, cfactor, cycle, None, 50, relax, min_coarse, max_levels)
    return _mgrit_speedup(n_steps, iterations, model=model, cfactor=mg.cfactor,
                          max_levels=mg.max_levels, min_coarse=mg.min_coarse, relax=mg.relax,
                          cycle=mg.cycle)


__all__ = ["Problem", "XOR", "BinaryAddition", "StepsResult", "solve", "potential_speedup",
           "default_tol", "mgrit_options", "SOLVERS", "CYCLES", "MAPPINGS", "INDEX_POINTS",
           "PROBLEMS"]

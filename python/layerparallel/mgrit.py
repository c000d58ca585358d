"""lp.MGRIT: the options of a multigrid-reduction-in-time solve.

An MGRIT object is passed as ``solver=`` to ``ODEResNet.loss_and_grad`` and
``forward`` (and to training); the compiled engine does the work. The same
engine solves any user propagator through :func:`solve`.
"""

import re

import numpy as np

from . import _collective as collective
from . import _core
from . import devices
from . import _validation as check
from ._core import MGRITDiverged

CYCLES = ("V", "F")
STORAGE = ("all", "C")
CONVENTIONS = ("package", "xbraid")
SPEEDUP_MODELS = ("critical_path", "paper")


def comm_handle(comm):
    """(Fortran handle, rank, size) of an mpi4py communicator, or (None, 0, 1)."""
    if comm is None:
        return None, 0, 1
    if not hasattr(comm, "py2f") or not hasattr(comm, "Get_size"):
        raise ValueError(f"comm must be an mpi4py communicator, got {comm!r}")
    size = comm.Get_size()
    if size > 1 and not _core.mpi_available:
        raise ValueError("comm has several ranks but layerparallel was built without MPI")
    if not _core.mpi_available:
        return None, 0, 1
    return comm.py2f(), comm.Get_rank(), size


class MGRIT:
    """Options of an MGRIT solve.

    Parameters
    ----------
    cfactor : int >= 2 or list of ints
        Coarsening factor c (a list gives one per level, the last repeating).
    max_levels : int >= 1
        Levels at most; 1 is serial propagation.
    min_coarse : int >= 1
        Stop coarsening at a level with at most this many intervals.
    relax : "F" | "FCF" | "FCFCF" ...
        Relaxation: F-relaxation, followed by C-then-F sweeps.
    cycle : "V" | "F"
    tol : float > 0 or None
        Stop when the residual (2-norm over level-0 C-points) is <= tol.
    rtol : float in (0, 1) or None
        ... or <= rtol times the first residual. With neither, exactly
        ``max_iter`` cycles run (one-shot training).
    max_iter : int >= 0
    comm : mpi4py communicator or None
        Ranks to distribute the layers over (any sub-communicator).
    storage : "all" | "C"
        Keep every level-0 state (fastest) or only C-point states, recomputing
        F-states when needed (about c times less state memory on level 0).
    warm_start : bool
        Start each solve from the previous solution (same network and batch).
    divergence : float > 1
        A residual this many times the first one raises lp.MGRITDiverged.
    skip_first_down : bool or None
        Skip the first down-cycle (XBraid's default start): the first cycle
        computes no level-0 relaxation or residual. None: True under
        ``conventions="xbraid"``, False under "package".
    conventions : "package" | "xbraid"
        How a solve starts and counts. "package": the skipped start injects
        the initial guess to every level, solves the coarsest and
        interpolates up with F-relaxation; the residual is checked before
        each cycle; iterations = residuals - 1. "xbraid" (XBraid's
        braid_Drive): with F-cycles the skipped start also runs a V-cycle
        from every intermediate level on the way up; each residual is
        followed by its cycle before the check; every cycle counts, the
        start included (iterations = residuals + 1 with the skip, residuals
        without), and so does max_iter.
    batch_intervals : bool or None
        Interval-batched sweeps: each relaxation hands the propagator step j
        of every interval of a level at once (on a device: one batched
        product and one element-wise launch per step j). None (default): on
        exactly when the net runs on a device. Batched and unbatched sweeps
        give the same bits.
    batch_block : int >= 0 or None
        Rows of the batch solved at a time. Samples propagate independently,
        so with a fixed number of cycles (``tol`` and ``rtol`` None) a dense
        net's batch can be solved in blocks of rows, each by its own MGRIT
        with the same cycles: the same numbers up to rounding (residuals are
        combined over the blocks), but each block's states stay in cache
        between steps, and on one rank the blocks run on the core's threads,
        one block per thread. None (default): chosen from the level-2 cache for
        narrow layers on one rank on the host, else the whole batch; 0: the
        whole batch; k: blocks of at least k rows (any rank count; then every
        rank must pass the same k, as with every option). Convolutional nets
        solve the whole batch.
    graphs : bool
        On a CUDA device and one rank, record the serial chain of steps (all
        of a serial solve, ``max_levels=1``; the coarsest level of MGRIT)
        once as a CUDA graph and replay it with one launch afterwards
        (default True; recorded on a chain's second run, replayed from its
        third). No effect on the host.
    device_messages : "auto" | "staged" | "direct"
        How a device solve's boundary states travel between ranks: through
        page-locked host buffers ("staged", any MPI) or as device pointers
        ("direct", a CUDA-aware MPI). "auto": the environment variable
        LP_CUDA_AWARE_MPI (1 or 0) if set, else the MPI library's own answer
        (``lp.devices.cuda_aware_mpi()``), else staged.
    """

    def __init__(self, cfactor=4, max_levels=10, min_coarse=2, relax="FCF", cycle="V",
                 tol=1e-9, rtol=None, max_iter=50, comm=None, storage="all",
                 warm_start=True, divergence=1e8, skip_first_down=None, conventions="package",
                 batch_intervals=None, graphs=True, device_messages="auto", batch_block=None):
        self.comm = comm
        self._handle, self.rank, self.size = comm_handle(comm)
        # Every rank must solve with the same options: checks and options agreed.
        with collective.checks(comm if self.size > 1 else None, "creating the MGRIT solver") \
                as agreed:
            self._configure(cfactor, max_levels, min_coarse, relax, cycle, tol, rtol, max_iter,
                            storage, warm_start, divergence, skip_first_down, conventions,
                            batch_intervals, graphs, device_messages, batch_block)
            agreed.fingerprint = {"MGRIT": repr(self._key()[:-1]), "ranks": self.size,
                                  "warm_start": self.warm_start}

    def _configure(self, cfactor, max_levels, min_coarse, relax, cycle, tol, rtol, max_iter,
                   storage, warm_start, divergence, skip_first_down, conventions,
                   batch_intervals=None, graphs=True, device_messages="auto",
                   batch_block=None):
        cf = check.cfactors(cfactor)
        self.cfactor = cf if len(cf) > 1 else cf[0]
        self._cf = cf
        self.max_levels = check.positive_int(max_levels, "max_levels", 64)
        self.min_coarse = check.positive_int(min_coarse, "min_coarse")
        if not isinstance(relax, str) or not re.fullmatch(r"F(CF)*", relax):
            raise ValueError(f"relax must be 'F', 'FCF', 'FCFCF', ...; got {relax!r}")
        self.relax = relax
        self.cycle = check.choice(cycle, "cycle", CYCLES)
        self.tol = None if tol is None else check.finite_float(tol, "tol", strictly_positive=True)
        if rtol is not None:
            rtol = check.finite_float(rtol, "rtol", strictly_positive=True)
            if rtol >= 1.0:
                raise ValueError(f"rtol must be < 1, got {rtol!r}")
        self.rtol = rtol
        if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) \
                or max_iter < 0:
            raise ValueError(f"max_iter must be a nonnegative integer, got {max_iter!r}")
        self.max_iter = int(max_iter)
        self.storage = check.choice(storage, "storage", STORAGE)
        self.warm_start = bool(warm_start)
        self.divergence = check.finite_float(divergence, "divergence")
        if self.divergence <= 1.0:
            raise ValueError(f"divergence must be > 1, got {divergence!r}")
        self.conventions = check.choice(conventions, "conventions", CONVENTIONS)
        if skip_first_down is None:
            skip_first_down = self.conventions == "xbraid"
        self.skip_first_down = bool(skip_first_down)
        if batch_intervals is not None and not isinstance(batch_intervals, (bool, np.bool_)):
            raise ValueError(f"batch_intervals must be True, False or None, got "
                             f"{batch_intervals!r}")
        self.batch_intervals = None if batch_intervals is None else bool(batch_intervals)
        if not isinstance(graphs, (bool, np.bool_)):
            raise ValueError(f"graphs must be True or False, got {graphs!r}")
        self.graphs = bool(graphs)
        devices.message_path(device_messages, environ={})  # checks the value
        self.device_messages = device_messages
        if batch_block is not None:
            if isinstance(batch_block, bool) or not isinstance(batch_block, (int, np.integer)) \
                    or batch_block < 0:
                raise ValueError(f"batch_block must be None or an integer >= 0, got "
                                 f"{batch_block!r}")
            batch_block = int(batch_block)
            if batch_block > 0 and (self.tol is not None or self.rtol is not None):
                raise ValueError("batch_block splits the batch only for a fixed number of "
                                 "cycles: set tol=None and rtol=None, or batch_block=None")
        self.batch_block = batch_block

    def replace(self, **changes):
        """A new MGRIT with the same options except ``changes``."""
        kw = dict(cfactor=self.cfactor, max_levels=self.max_levels, min_coarse=self.min_coarse,
                  relax=self.relax, cycle=self.cycle, tol=self.tol, rtol=self.rtol,
                  max_iter=self.max_iter, comm=self.comm, storage=self.storage,
                  warm_start=self.warm_start, divergence=self.divergence,
                  skip_first_down=self.skip_first_down, conventions=self.conventions,
                  batch_intervals=self.batch_intervals, graphs=self.graphs,
                  device_messages=self.device_messages, batch_block=self.batch_block)
        kw.update(changes)
        if ("tol" in changes or "rtol" in changes) and "batch_block" not in changes \
                and (kw["tol"] is not None or kw["rtol"] is not None):
            kw["batch_block"] = None  # a tolerance solves the whole batch
        return MGRIT(**kw)

    def options(self, max_levels=None):
        """The options as the compiled engine takes them."""
        return {
            "cfactor": self._cf,
            "max_levels": self.max_levels if max_levels is None else max_levels,
            "min_coarse": self.min_coarse,
            "relax_cf": (len(self.relax) - 1) // 2,
            "fcycle": self.cycle == "F",
            "tol": self.tol or 0.0,
            "rtol": self.rtol or 0.0,
            "max_iter": self.max_iter,
            "store_fine_f": self.storage == "all",
            "divergence": self.divergence,
            "skip_first_down": self.skip_first_down,
            "xbraid": self.conventions == "xbraid",
            "batch_intervals": -1 if self.batch_intervals is None else int(self.batch_intervals),
            "graphs": self.graphs,
            "batch_block": -1 if self.batch_block is None else self.batch_block,
            # Resolved per rank: MPI does not care whether the other side's
            # buffer was on the host or the device.
            "device_messages": self.size > 1 and
            devices.message_path(self.device_messages) == "direct",
        }

    def _key(self):
        return (tuple(self._cf), self.max_levels, self.min_coarse, self.relax, self.cycle,
                self.tol, self.rtol, self.max_iter, self.storage, self.divergence,
                self.skip_first_down, self.conventions, self.batch_intervals, self.graphs,
                self.device_messages, self.batch_block, self._handle)

    def __repr__(self):
        return (f"MGRIT(cfactor={self.cfactor}, max_levels={self.max_levels}, "
                f"min_coarse={self.min_coarse}, relax={self.relax!r}, cycle={self.cycle!r}, "
                f"tol={self.tol}, rtol={self.rtol}, max_iter={self.max_iter}, "
                f"storage={self.storage!r}, conventions={self.conventions!r}, "
                f"ranks={self.size})")


def serial_options():
    """Engine options for serial propagation across ranks (one level)."""
    return MGRIT(max_levels=1, tol=None, max_iter=1).options()


def convergence_factor(residuals, iterations=None):
    """Average convergence factor rho = (r_last / r_0)^(1/k) of a residual
    history, k = iterations (default: the cycles between the first and last
    residual, len - 1; XBraid's count adds its start cycle)."""
    r = list(residuals)
    if len(r) < 2 or r[0] == 0.0:
        return 0.0
    k = len(r) - 1 if iterations is None else max(int(iterations), 1)
    return (r[-1] / r[0]) ** (1.0 / k)


def with_rho(info):
    """A solve's info dict with its average convergence factor added as "rho"."""
    info["rho"] = convergence_factor(info["residuals"], info["iterations"])
    return info


class PropagatorResult:
    """The outcome of :func:`solve`: states of the points this rank owns, and the history."""

    def __init__(self, engine, info, n_steps):
        self._engine = engine
        self.n_steps = n_steps
        self.iterations = info["iterations"]
        self.converged = info["converged"]
        self.residuals = list(info["residuals"])
        self.steps = info["steps"]
        self.first_point = engine.first_point
        self.last_point = engine.last_point

    def state(self, p):
        """u_p at a level-0 point this rank owns (first_point <= p <= last_point)."""
        return self._engine.state(p)

    def states(self):
        """All owned states, shape (last_point - first_point + 1, state size)."""
        return np.array([self.state(p) for p in range(self.first_point, self.last_point + 1)])

    @property
    def rho(self):
        """Average convergence factor (r_last / r_0)^(1/k), k = iterations."""
        return convergence_factor(self.residuals, self.iterations)

    def __repr__(self):
        last = f"{self.residuals[-1]:.3e}" if self.residuals else "none"
        rho = self.rho
        return (f"{type(self).__name__}(n_steps={self.n_steps}, iterations={self.iterations}, "
                f"converged={self.converged}, last_residual={last}, "
                f"rho={'none' if rho is None else format(rho, '.3g')}, "
                f"points={self.first_point}..{self.last_point})")


def _check_vector(w, name):
    w = check.float_array(w, name, 1)
    return w


def solve(phi, u0, n_steps, solver=None, init_guess=None):
    """Solve u_{p+1} = phi(level, p, u_p), p = 0..n_steps-1, u_0 = u0, by MGRIT.

    ``phi(level, step, w)`` is any Python callable returning the next state
    (a 1-d float array like w): on level l it steps from level-0 point
    ``step`` over c^l points. Without a solver, one level (serial
    propagation). Under MPI (solver.comm), every rank passes the same
    arguments and owns a contiguous block of points. Returns a
    :class:`PropagatorResult`.

    A phi that raises, returns the wrong shape or returns NaN/Inf fails the
    solve on every rank: the rank where it happened raises its own error (NaN
    or Inf as lp.MGRITDiverged, as a diverging solve does), the others an
    lp.MGRITDiverged naming that rank and the error.
    """
    comm = solver.comm if isinstance(solver, MGRIT) and solver.size > 1 else None
    with collective.checks(comm, "checking the arguments of lp.solve") as agreed:
        if not callable(phi):
            raise ValueError(f"phi must be callable, got {phi!r}")
        u0 = _check_vector(u0, "u0")
        n_steps = check.positive_int(n_steps, "n_steps")
        solver = MGRIT(max_levels=1, tol=None, max_iter=1) if solver is None else solver
        if not isinstance(solver, MGRIT):
            raise ValueError(f"solver must be an lp.MGRIT, got {solver!r}")
        if solver.size > n_steps:
            raise ValueError(f"more ranks ({solver.size}) than steps ({n_steps})")
        guess = u0 if init_guess is None else _check_vector(init_guess, "init_guess")
        if guess.shape != u0.shape:
            raise ValueError(f"init_guess must have shape {u0.shape}, got {guess.shape}")
        agreed.fingerprint = {"u0 shape": u0.shape, "n_steps": n_steps,
                              "solver": repr(solver._key()[:-1])}
    engine, info = solve_propagator(phi, u0, guess, n_steps, solver.options(), solver._handle,
                                    comm)
    return PropagatorResult(engine, info, n_steps)


def solve_propagator(phi, u0, guess, n_steps, options, handle, comm):
    """(engine, info) of the compiled engine over ``phi``, its output checked.
    A failure of phi on one rank fails the solve on every rank; the others
    raise lp.MGRITDiverged naming that rank and its error."""
    failures = []  # phi's error on this rank
    engine = _core.PropagatorSolver(_guarded(phi, u0.shape[0], failures), u0.shape[0],
                                    n_steps, options, handle, [])
    try:
        info = engine.solve(u0, False, guess)
    except Exception as exc:
        # The engine fails on every rank alike; tell the others which rank and why.
        collective.agree(comm, exc if failures else None, what="in phi",
                         peer_error=MGRITDiverged)
        raise
    return engine, info


def _guarded(phi, size, failures):
    """phi, with its output checked: a 1-d array of ``size`` finite numbers.
    A failure is recorded in ``failures`` (the engine then fails the solve on
    every rank)."""

    def step(level, point, w):
        try:
            out = phi(level, point, w)
            try:
                arr = np.asarray(out, dtype=np.float64)
            except (TypeError, ValueError):
                arr = None
            if arr is None or arr.shape != (size,):
                shape = getattr(out, "shape", type(out).__name__)
                raise ValueError(f"phi must return a 1-d float array of length {size}, got "
                                 f"{shape} at level {level}, step {point}")
            # NaN in, NaN out is another rank's failure arriving (or a divergence
            # the engine reports itself), not this phi's.
            if not np.isfinite(arr).all() and np.isfinite(w).all():
                raise MGRITDiverged(f"phi returned NaN or Inf at level {level}, step {point}")
            return arr
        except Exception as exc:
            failures.append(exc)
            raise

    return step


def check_propagator(phi, w, levels=(0, 1), step=0):
    """Check a user step against the engine's contract; returns a list of problems.

    Like XBraid's braid_TestAll: calls ``phi(level, step, w)`` on copies of w
    and reports a wrong type, shape or dtype, non-finite output, in-place
    modification of the input, and non-determinism (two calls differing).
    An empty list means the propagator is fit for MGRIT.
    """
    problems = []
    if not callable(phi):
        return [f"phi is not callable: {phi!r}"]
    w = _check_vector(w, "w")
    for level in levels:
        outs = []
        for attempt in range(2):
            x = w.copy()
            try:
                out = phi(level, step, x)
            except Exception as exc:  # the report is the point
                problems.append(f"level {level}: phi raised {type(exc).__name__}: {exc}")
                break
            if not np.array_equal(x, w):
                problems.append(f"level {level}: phi modified its input in place")
            if not isinstance(out, np.ndarray):
                problems.append(f"level {level}: phi returned {type(out).__name__}, "
                                "not a numpy array")
                out = np.asarray(out)
            if out.dtype.kind not in "fiu":
                problems.append(f"level {level}: phi returned dtype {out.dtype}, not real")
                break
            if out.shape != w.shape:
                problems.append(f"level {level}: phi returned shape {out.shape}, "
                                f"expected {w.shape}")
                break
            if out.dtype != np.float64:
                problems.append(f"level {level}: phi returned dtype {out.dtype} "
                                "(converted to float64, losing precision or time)")
            if not np.isfinite(out).all():
                problems.append(f"level {level}: phi returned NaN or Inf")
            outs.append(np.array(out, dtype=np.float64))
        # NaN in both calls is already reported as non-finite, not as a difference.
        if len(outs) == 2 and not np.array_equal(outs[0], outs[1], equal_nan=True):
            problems.append(f"level {level}: phi is not deterministic (two calls differ by "
                            f"{np.abs(outs[0] - outs[1]).max():.3e})")
    return sorted(set(problems), key=problems.index)




def hierarchy(n_steps, cfactor=4, max_levels=10, min_coarse=2):
    """The levels the compiled engine builds for n_steps: a dict of lists
    ``intervals`` (N^(l)), ``cfactor`` (to level l+1; 1 on the coarsest) and
    ``stride`` (level-0 steps per level-l step)."""
    n_steps = check.positive_int(n_steps, "n_steps")
    opts = MGRIT(cfactor=cfactor, max_levels=max_levels, min_coarse=min_coarse).options()
    return _core.mgrit_hierarchy(n_steps, opts)


def critical_path(n_steps, cfactor=4, max_levels=10, min_coarse=2, relax="FCF", cycle="V",
                  model="critical_path"):
    """Sequential step applications of one iteration; returns (steps, levels).

    model "critical_path" (the package's): the strong-scaling limit, one
    coarse interval per rank, so every sweep costs what one interval costs.
    Per level l with factor c: relaxation c (F-relaxation plus the C-point
    step) per F sweep, the residual's coarse step 1, and the F-relaxation
    after the correction c - 1 (for FCF and c = 2: 3 + 2 + 1); the coarsest
    level costs its actual size; F-cycles recurse.

    model "paper": the training-steps paper's equations (18)-(19) for c = 2
    and FCF: 7 on level 0 (FCF 3, FAS residual 4), 8 on every coarser level
    (plus one interpolation step), 10 on the coarsest, so a V-cycle of L
    levels costs v(L) = 17 + 8 (L - 2), and an F-cycle the V-cycles starting
    on levels l = 1 .. L-2, sum v(L - l) (no final V-cycle on level 0, as
    the paper notes). With at most two levels an F-cycle is a V-cycle.
    """
    model = check.choice(model, "model", SPEEDUP_MODELS)
    relax = MGRIT(relax=relax).relax
    cycle = check.choice(cycle, "cycle", CYCLES)
    h = hierarchy(n_steps, cfactor, max_levels, min_coarse)
    counts, cfs = h["intervals"], h["cfactor"]
    last = len(counts) - 1
    if last == 0:
        return counts[0], 1
    if model == "paper":
        if any(c != 2 for c in cfs[:-1]) or relax != "FCF":
            raise ValueError("the paper's speedup model is for cfactor 2 and FCF relaxation, "
                             f"got cfactor {cfactor!r} and relax {relax!r}")

        def v(levels):
            return 17 + 8 * max(levels - 2, 0)

        levels = last + 1
        if cycle == "V" or levels <= 2:
            return v(levels), levels
        return sum(v(levels - l) for l in range(1, levels - 1)), levels
    sweeps = 1 + (len(relax) - 1) // 2

    def cost(level, fcycle):
        if level == last:
            return counts[level]
        c = cfs[level]
        down = sweeps * c + 1  # relaxation with residual, then the restriction's coarse step
        coarse = cost(level + 1, fcycle)
        if fcycle and level + 1 < last:
            coarse += cost(level + 1, False)
        return down + coarse + (c - 1)

    return cost(0, cycle == "F"), len(counts)


def potential_speedup(n_steps, iterations, model="critical_path", **options):
    """Serial steps over MGRIT's sequential steps: N / (iterations x
    critical_path(N, model=model, **options))."""
    per_iteration, _ = critical_path(n_steps, model=model, **options)
    return n_steps / (max(iterations, 1) * per_iteration)


from ._gpu_model import gpu_crossover, gpu_time  # noqa: E402 (uses this module)

__all__ = ["MGRIT", "MGRITDiverged", "solve", "check_propagator", "PropagatorResult",
           "critical_path", "potential_speedup", "hierarchy", "gpu_time", "gpu_crossover",
           "CONVENTIONS", "SPEEDUP_MODELS"]

"""lp.train: training an ODE-ResNet, serially or layer-parallel.

Exact mode: every gradient comes from serial propagation (solver=None) or from
MGRIT solved to its tolerance. One-shot mode (one_shot=d): each evaluation
runs d MGRIT cycles for the state and d for the adjoint, warm-started from the
previous evaluation, and the optimizer takes the inexact gradient. With
adaptive one-shot (the default) d rises when L-BFGS's line search fails or
stalls and falls back when steps are accepted at once.
"""

import os
import time
import warnings

import numpy as np

from . import _collective as collective
from . import _core
from . import _validation as check
from . import checkpoint as ckpt
from .mgrit import MGRIT
from .optim import Optimizer
from .optim import create as create_optimizer
from .params import Params

# Relative cost of a loss-only evaluation (a forward solve) against loss and
# gradient: serial propagation runs one product per layer against three
# (forward, adjoint, gradient); MGRIT's forward solve is about as costly as
# its adjoint solve, and the gradient adds a little (bench/RESULTS.md measures both).
LOSS_ONLY_COST = {"serial": 1.0 / 3.0, "mgrit": 0.45}
# One-shot: a line search needing more trials than this counts as stalled.
STALLED_TRIALS = 3


def adapt_cycles(d, d_min, d_max, trials, failed):
    """One-shot cycles for the next evaluations after a line search of ``trials``
    trial points: doubled (up to d_max) when it failed, one more when it stalled,
    one fewer (down to d_min) when the first trial was accepted."""
    if failed:
        return min(2 * d, d_max)
    if trials is not None and trials > STALLED_TRIALS:
        return min(d + 1, d_max)
    if trials == 1:
        return max(d - 1, d_min)
    return d


class History(dict):
    """What training recorded.

    Per optimizer step (lists of equal length): iteration, loss, grad_norm,
    step_size, evaluations, mgrit_forward_iterations, mgrit_adjoint_iterations,
    mgrit_forward_residual, mgrit_adjoint_residual (last residual; None in
    serial mode), one_shot_cycles (d used in the step; None unless one-shot),
    line_search_trials (None unless L-BFGS), wall_time (seconds since start),
    and any extra key a record brings (e.g. nested iteration's "level",
    "work_units"); line_search_failed (True) appears in the records of steps
    whose line search failed.

    Per validation (lists of equal length, one entry per validation, so that
    ``max(hist["val_accuracy"])`` works): val_iteration (the step after which
    it ran), val_loss, and for classification val_accuracy and train_accuracy.

    ``records()`` gives one dict per step with every key, the validation keys
    None at steps without a validation (the JSON-lines log).
    """

    STEP_KEYS = ("iteration", "loss", "grad_norm", "step_size", "evaluations",
                 "mgrit_forward_iterations", "mgrit_adjoint_iterations",
                 "mgrit_forward_residual", "mgrit_adjoint_residual", "one_shot_cycles",
                 "line_search_trials", "wall_time")
    VALIDATION_KEYS = ("val_loss", "val_accuracy", "train_accuracy")
    KEYS = STEP_KEYS + ("val_iteration",) + VALIDATION_KEYS

    def __init__(self, records=None):
        super().__init__({k: [] for k in self.KEYS})
        for r in records or ():
            self.append(r)
        self.stopped_early = False
        self.stop_reason = None

    def append(self, record):
        """Add one step's record (validation keys None or absent when not validated)."""
        n = len(self["iteration"])
        step_keys = [k for k in self if k not in self.VALIDATION_KEYS and k != "val_iteration"]
        for k in record:
            if k not in self and k not in self.VALIDATION_KEYS:
                self[k] = [None] * n
                step_keys.append(k)
        for k in step_keys:
            self[k].append(record.get(k))
        if record.get("val_loss") is not None:
            self["val_iteration"].append(record["iteration"])
            for k in self.VALIDATION_KEYS:
                if record.get(k) is not None:
                    self[k].append(record[k])

    def records(self):
        """The history as one dict per step (for JSON lines)."""
        validated = {it: i for i, it in enumerate(self["val_iteration"])}
        out = []
        for i, it in enumerate(self["iteration"]):
            r = {k: v[i] for k, v in self.items()
                 if k not in self.VALIDATION_KEYS and k != "val_iteration"}
            j = validated.get(it)
            for k in self.VALIDATION_KEYS:
                r[k] = self[k][j] if j is not None and j < len(self[k]) else None
            out.append(r)
        return out

    def last(self, key):
        values = [v for v in self[key] if v is not None]
        return values[-1] if values else None


def least_squares_head(net, theta, X, Y):
    """LSGD's output layer: W_out, b_out minimizing the regression head's loss
    1/(2n) ||U W_out^T + b_out - Y||^2 + gamma_out/2 (||W_out||^2 + ||b_out||^2)
    for the current features U = u_N, by a least-squares solve (not the normal
    equations). Identical on every rank (u_N and the data are)."""
    U = net.forward(theta, X)
    n = U.shape[0]
    A = np.hstack([U, np.ones((n, 1))]) / np.sqrt(n)
    B = Y / np.sqrt(n)
    if net.gamma_out > 0:
        k = A.shape[1]
        A = np.vstack([A, np.sqrt(net.gamma_out) * np.eye(k)])
        B = np.vstack([B, np.zeros((k, B.shape[1]))])
    coef, *_ = np.linalg.lstsq(A, B, rcond=None)
    theta.W_out[...] = coef[:-1].T
    theta.b_out[...] = coef[-1]


def _signature(net, optimizer, solver, one_shot, batch_size, seed, lsgd):
    return {
        "net": repr(net), "gammas": [net.gamma_tik, net.gamma_ddt, net.gamma_out],
        "ranks": net.size, "rank": net.rank, "optimizer": type(optimizer).__name__,
        # the solver's options, not its ranks (a checkpoint may resume on other ranks)
        "solver": None if solver is None else repr(solver._key()[:-1]), "one_shot": one_shot,
        "batch_size": batch_size, "seed": seed, "lsgd": lsgd, "dtype": net.dtype.name,
    }


def train(net, theta, X, Y, optimizer, iterations=100, solver=None, one_shot=None,
          batch_size=None, validation=None, validate_every=10, target_accuracy=None,
          seed=0, lsgd=False, checkpoint=None, checkpoint_every=10, resume=False,
          callback=None, progress=False, check_data=False, checkpoint_warm_states=True,
          adaptive_one_shot=True, one_shot_max=None, grad_tol=None):
    """Train ``theta`` (lp.Params, updated in place) for ``iterations`` optimizer steps.

    Parameters
    ----------
    optimizer : an lp.optim optimizer (GD, SGD, Adam, LBFGS) or its name
        ("lbfgs", "adam", "sgd", "gd": ``lp.optim.create`` with its default
        learning rate), or a decomposition method of lp.dd (bound to ``net``
        first; it gets each batch)
    solver : lp.MGRIT or None
        None: serial propagation (across ranks for a distributed net). An
        lp.MGRIT: its tolerance decides each solve (exact mode) unless
        ``one_shot`` is given.
    one_shot : int or None
        d MGRIT cycles per solve, warm-started (needs a solver).
    adaptive_one_shot : bool
        One-shot with L-BFGS: raise d (up to ``one_shot_max``, default 8
        one_shot) when a line search fails (doubled) or needs more than
        STALLED_TRIALS trials (+1), lower it (not below one_shot) when the first
        trial is accepted. A line search failing at the largest d warns.
    batch_size : int or None
        Mini-batches drawn without replacement per epoch from ``seed``; None
        is full batch.
    validation : (Xv, Yv) or None, evaluated every ``validate_every`` steps
        and at the end; classification nets also record accuracies.
    target_accuracy : stop once the validation accuracy reaches it.
    grad_tol : stop after a step whose gradient norm (the gradient the step
        took: inexact in one-shot mode) is at most this. A converged run
        otherwise goes on to the last iteration, and L-BFGS's line searches
        then fail every other step (no trial lowers a loss at its minimum).
        ``history.stop_reason`` says which test stopped a run
        ("target_accuracy", "grad_tol"; None: it ran all iterations).
    lsgd : bool
        Hybrid least squares / gradient descent for regression heads: the
        output layer by a least-squares solve before every step, gradient steps
        on the other parameters.
    checkpoint : directory or None; a checkpoint every ``checkpoint_every``
        steps; ``resume`` continues from it with exactly the numbers of an
        uninterrupted run. The directory must be writable (checked before the
        first step). Under MPI the ranks' files form one consistent set.
    checkpoint_warm_states : bool
        Keep the MGRIT solvers' warm states in checkpoints (one-shot resumes
        then give exactly the uninterrupted numbers). They hold two states of
        every layer for every sample, much more than the parameters; without
        them a resumed run's first solves start cold (other one-shot numbers).
    callback : f(iteration, record) called after each step.
    progress : show a tqdm bar on rank 0 (needs tqdm; ImportError before any
        work without it).
    check_data : bool
        On several ranks, also check that every rank holds the same data
        (a digest of X, Y and the validation data). The configuration, the
        data shapes and the replicated parameters (opening layer and head)
        are always checked; a difference raises on every rank.

    Returns a :class:`History`.
    """
    if isinstance(optimizer, str):
        optimizer = create_optimizer(optimizer)  # a ValueError names the known ones
    comm = net.comm if net.distributed else None
    with collective.checks(comm, "checking the arguments of lp.train") as agreed:
        (iterations, validate_every, checkpoint_every, seed, solver, one_shot, target_accuracy,
         X, Y, batch_size, validation) = _arguments(
            net, theta, X, Y, iterations, solver, one_shot, batch_size, validation,
            validate_every, target_accuracy, seed, lsgd, checkpoint, checkpoint_every, resume)
        if grad_tol is not None:
            grad_tol = check.finite_float(grad_tol, "grad_tol", strictly_positive=True)
        d_max = None
        if one_shot is not None:
            d_max = 8 * one_shot if one_shot_max is None else check.positive_int(
                one_shot_max, "one_shot_max")
            if d_max < one_shot:
                raise ValueError(f"one_shot_max must be >= one_shot, got {one_shot_max!r}")
        elif one_shot_max is not None:
            raise ValueError("one_shot_max needs one_shot")
        if comm is not None:
            agreed.fingerprint = _fingerprint(
                _signature(net, optimizer, solver, one_shot, batch_size, seed, lsgd), theta, X,
                Y, validation, check_data, iterations=iterations, resume=resume,
                validate_every=validate_every, checkpoint_every=checkpoint_every,
                checkpoint=checkpoint is not None, target_accuracy=target_accuracy,
                grad_tol=grad_tol,
                warm_states=checkpoint_warm_states)
    if one_shot is not None:  # a collective (it agrees on the options): after the checks
        solver = solver.replace(tol=None, rtol=None, max_iter=one_shot, warm_start=True)
    if getattr(optimizer, "uses_batch", False):  # decomposition methods (lp.dd)
        if lsgd:
            raise ValueError(f"lsgd does not combine with {type(optimizer).__name__}")
        solver = optimizer.bind(net, solver)  # they see the network and may pick the solver
    signature = _signature(net, optimizer, solver, one_shot, batch_size, seed, lsgd)
    n = X.shape[0]
    if validation is not None:
        Xv, Yv = validation

    if progress:
        try:
            from tqdm import tqdm
        except ImportError:
            raise ImportError("progress=True needs tqdm: pip install tqdm") from None

    rng = np.random.default_rng(seed)
    order, cursor = None, n
    history = History()
    start = 0
    carried = None  # (J, g) at the accepted point, when the next step may reuse it
    restore_narrow = None  # the narrow-kernel mode to restore after a resume forced one
    if resume:
        state = ckpt.load(checkpoint, net.rank, signature, comm, other_ranks=True)
        with collective.checks(comm, "resuming", peer_error=ckpt.CheckpointError):
            try:
                if "parts" in state:  # written by another number of ranks
                    state = _redistribute(net, optimizer, state)
                theta.data[...] = state["theta"]
                optimizer.load_state_dict(state["optimizer_state"])
                rng.bit_generator.state = state["rng_state"]["rng"]
                order = None if state["rng_state"]["order"] is None else np.array(
                    state["rng_state"]["order"])
                cursor = state["rng_state"]["cursor"]
                history = History(state["history"])
                start = state["iteration"]
                if len(state["history"]) != start:
                    raise ValueError(f"{len(state['history'])} history records for iteration "
                                     f"{start}")
                if state["warm_state"] is not None and solver is not None:
                    net._parallel_model(solver).set_warm_state(*state["warm_state"])
                if state["carried"] is not None:
                    carried = (state["carried"][0], Params(theta.layout,
                                                           state["carried"][1].copy(),
                                                           theta._dist))
            except Exception as exc:
                raise ckpt.CheckpointError(f"checkpoint {state['path']} does not fit this "
                                           f"run: {exc}") from None
        recorded = (state.get("kernels") or {}).get("narrow")
        if recorded is not None and recorded != (_kernel_paths(net) or {}).get("narrow"):
            # Take the recorded path again (the timing may choose otherwise in
            # this process): the resumed numbers are then the uninterrupted
            # run's, bit for bit. The caller's mode comes back at the end.
            from . import narrow_kernels, set_narrow_kernels

            restore_narrow = narrow_kernels()
            set_narrow_kernels("on" if recorded else "off")
        notes = [state["note"]] if state["note"] else []
        if one_shot is not None and state["warm_state"] is None and "ranks_before" not in state:
            notes.append(f"checkpoint {state['path']} holds no MGRIT warm states: the first "
                         "one-shot solves start cold, so the numbers differ from an "
                         "uninterrupted run")
        if net.rank == 0:
            for note in notes:
                warnings.warn(note, RuntimeWarning, stacklevel=2)

    cycles = one_shot
    # Adaptive cycles need a model that can change its cycles and keep its
    # warm states (the convolutional model cannot yet: d stays fixed there).
    adaptive = (one_shot is not None and adaptive_one_shot
                and hasattr(net._parallel_model(solver), "set_max_iter"))
    if adaptive and history["iteration"]:  # continue from the last step's outcome
        last = history.records()[-1]
        if last.get("one_shot_cycles") is not None:
            cycles = adapt_cycles(last["one_shot_cycles"], one_shot, d_max,
                                  last.get("line_search_trials"),
                                  bool(last.get("line_search_failed")))

    def next_batch():
        nonlocal order, cursor
        if batch_size is None:
            return X, Y
        if order is None or cursor + batch_size > n:
            order, cursor = rng.permutation(n), 0
        idx = np.sort(order[cursor:cursor + batch_size])
        cursor += batch_size
        return X[idx], Y[idx]

    mgrit = {}

    def set_cycles(d):
        if adaptive:
            net._parallel_model(solver).set_max_iter(d)

    def evaluate_loss(th, Xb, Yb):
        return float(net.loss(th, Xb, Yb, solver=solver))

    def evaluate(th, Xb, Yb):
        if solver is None:
            J, g = net.loss_and_grad(th, Xb, Yb)
        else:
            J, g, info = net.loss_and_grad(th, Xb, Yb, solver=solver)
            mgrit.update(info)
        if lsgd:  # the output layer is solved for, not stepped
            g.W_out[...] = 0.0
            g.b_out[...] = 0.0
        return J, g

    bar = None
    if progress and net.rank == 0:
        bar = tqdm(total=iterations, initial=start, unit="it")
    t0 = time.perf_counter() - (history.last("wall_time") or 0.0)
    stalled = False
    try:
        for it in range(start, iterations):
            set_cycles(cycles)
            Xb, Yb = next_batch()
            if lsgd:
                least_squares_head(net, theta, Xb, Yb)
            J, g = carried if carried is not None else evaluate(theta, Xb, Yb)
            closure = lambda th: evaluate(th, Xb, Yb)  # noqa: E731
            if getattr(optimizer, "uses_batch", False):
                info = optimizer.step(theta, J, g, closure, batch=(Xb, Yb))
            elif isinstance(optimizer, Optimizer):
                loss_only = lambda th: evaluate_loss(th, Xb, Yb)  # noqa: E731
                loss_only.relative_cost = LOSS_ONLY_COST["serial" if solver is None else "mgrit"]
                info = optimizer.step(theta, J, g, closure, loss_closure=loss_only)
            else:
                info = optimizer.step(theta, J, g, closure)
            # Full batch: the line search's last evaluation is the next step's.
            # Not after a failed line search: an inexact (one-shot, or tolerance)
            # loss at theta may lie below what every trial can reach, and reusing
            # it would fail every later search too; theta is evaluated afresh.
            carried = None
            if (batch_size is None and not lsgd and info.get("grad") is not None
                    and not info.get("line_search_failed")):
                carried = (info["loss"], info["grad"])
            grad_norm = info["grad_norm"] if "grad_norm" in info else g.norm()
            record = {"iteration": it + 1, "loss": float(J), "grad_norm": float(grad_norm),
                      "step_size": info.get("step_size"), "evaluations": info.get("evaluations")}
            if "trials" in info:
                record["line_search_trials"] = info["trials"]
            if one_shot is not None:
                record["one_shot_cycles"] = cycles
                if adaptive:  # d for the next step
                    cycles = adapt_cycles(cycles, one_shot, d_max, info.get("trials"),
                                          bool(info.get("line_search_failed")))
            if info.get("line_search_failed") and adaptive and record["one_shot_cycles"] < d_max:
                record["line_search_failed"] = True  # answered by more cycles, not a stall
            elif info.get("line_search_failed"):  # no step: say so rather than stall silently
                record["line_search_failed"] = True
                if not stalled and net.rank == 0 and one_shot is not None:
                    warnings.warn(
                        f"one-shot training: the line search failed at iteration {it + 1} with "
                        f"{record['one_shot_cycles']} MGRIT cycles per solve"
                        + (" (the most allowed, one_shot_max)" if adaptive else "")
                        + "; the inexact gradient is not a descent direction. Use more cycles "
                        "or exact mode (a solver tolerance).", RuntimeWarning, stacklevel=2)
                elif not stalled and net.rank == 0:
                    warnings.warn(f"iteration {it + 1}: the line search found no step that "
                                  f"decreases the loss in {info.get('evaluations')} evaluations; "
                                  "the parameters did not change (is the learning rate "
                                  f"{getattr(optimizer, 'lr', '?')} too large?)", RuntimeWarning,
                                  stacklevel=2)
                stalled = True
            if mgrit:
                record["mgrit_forward_iterations"] = mgrit["forward"]["iterations"]
                record["mgrit_adjoint_iterations"] = mgrit["adjoint"]["iterations"]
                res_f, res_a = mgrit["forward"]["residuals"], mgrit["adjoint"]["residuals"]
                record["mgrit_forward_residual"] = res_f[-1] if res_f else None
                record["mgrit_adjoint_residual"] = res_a[-1] if res_a else None
            last = it + 1 == iterations
            # (the same gradient norm on every rank)
            converged = grad_tol is not None and record["grad_norm"] <= grad_tol
            stop = False
            if validation is not None and ((it + 1) % validate_every == 0 or last or converged):
                record["val_loss"] = float(net.loss(theta, Xv, Yv))
                if net.head == "classification":
                    record["val_accuracy"] = net.accuracy(theta, Xv, Yv)
                    record["train_accuracy"] = net.accuracy(theta, X, Y)
                    if target_accuracy is not None and record["val_accuracy"] >= target_accuracy:
                        stop, history.stop_reason = True, "target_accuracy"
            if not stop and converged:
                stop, history.stop_reason = True, "grad_tol"
            record["wall_time"] = time.perf_counter() - t0
            history.append(record)
            # The callback and the bar run on some ranks only or may fail on one:
            # agreed before the next step communicates.
            with collective.checks(comm, f"after iteration {it + 1}"):
                if callback is not None:
                    callback(it + 1, record)
                if bar is not None:
                    bar.set_postfix(loss=f"{J:.4g}")
                    bar.update(1)
            if checkpoint is not None and ((it + 1) % checkpoint_every == 0 or last or stop):
                with collective.checks(comm, f"preparing the checkpoint of iteration {it + 1}"):
                    warm = None
                    if solver is not None and checkpoint_warm_states:
                        warm = net._parallel_model(solver).warm_state()
                    optimizer_state = optimizer.state_dict()
                ckpt.save(checkpoint, net.rank, signature=signature, iteration=it + 1,
                          theta=theta.data, optimizer_state=optimizer_state,
                          rng_state={"rng": rng.bit_generator.state,
                                     "order": None if order is None else order.tolist(),
                                     "cursor": cursor},
                          history=history.records(), warm_state=warm,
                          carried=None if carried is None else (carried[0], carried[1].data),
                          kernels=_kernel_paths(net), comm=comm)
            if stop:
                history.stopped_early = True
                break
    finally:
        if one_shot is not None and cycles != one_shot:
            set_cycles(one_shot)  # the network's solver as the caller configured it
        if restore_narrow is not None:
            from . import set_narrow_kernels

            set_narrow_kernels(restore_narrow)
    if bar is not None:
        bar.close()
    return history


def _redistribute(net, optimizer, state):
    """A checkpoint of P ranks as this rank's state: the parameters, the
    carried gradient and the optimizer's parameter-shaped state reassembled
    from every writer's part and cut to this rank's layers; the MGRIT warm
    states (of the old distribution) are dropped."""
    parts = state["parts"]
    written_by = len(parts)
    firsts = list(_core.first_layers(net.n_layers, written_by)) + [net.n_layers]
    layouts = [net.block_layout(firsts[q], firsts[q + 1] - firsts[q])
               for q in range(written_by)]
    a, b = net.first_layer, net.first_layer + net.n_local_layers

    def move(vectors):
        full = Params(net._global_layout, dtype=net.dtype)
        for q, vec in enumerate(vectors):
            old = Params(layouts[q], np.ascontiguousarray(vec, dtype=net.dtype))
            full.W[firsts[q]:firsts[q + 1]] = old.W
            full.b[firsts[q]:firsts[q + 1]] = old.b
            if q == 0:
                for name in ("W_in", "b_in", "W_out", "b_out"):
                    getattr(full, name)[...] = getattr(old, name)
        mine = net.new_params()
        for name in ("W_in", "b_in", "W_out", "b_out"):
            getattr(mine, name)[...] = getattr(full, name)
        mine.W[...] = full.W[a:b]
        mine.b[...] = full.b[a:b]
        return mine.data

    out = dict(parts[0])
    out["theta"] = move([p["theta"] for p in parts])
    opt = dict(parts[0]["optimizer_state"])
    for key in getattr(optimizer, "_vectors", ()):
        blocks = [np.asarray(p["optimizer_state"][key]) for p in parts if key in
                  p["optimizer_state"]]
        if len(blocks) != written_by or blocks[0].size == 0:
            continue  # absent or not yet built
        if blocks[0].ndim == 1:
            opt[key] = move(blocks)
        else:
            opt[key] = np.array([move([blk[i] for blk in blocks])
                                 for i in range(blocks[0].shape[0])])
    out["optimizer_state"] = opt
    if parts[0]["carried"] is not None:
        out["carried"] = (parts[0]["carried"][0], move([p["carried"][1] for p in parts]))
    out["warm_state"] = None
    out["ranks_before"] = written_by
    note = (f"the checkpoint of iteration {out['iteration']} was written by {written_by} ranks; "
            f"resuming on {net.size}: weights and optimizer state redistributed, MGRIT warm "
            "states dropped")
    out["note"] = f"{state['note']}; {note}" if state.get("note") else note
    return out


def _arguments(net, theta, X, Y, iterations, solver, one_shot, batch_size, validation,
               validate_every, target_accuracy, seed, lsgd, checkpoint, checkpoint_every,
               resume):
    """train's arguments checked (locally; train agrees on them across ranks)."""
    if not isinstance(theta, Params):
        raise ValueError("theta must be the lp.Params of net (net.init(...))")
    if theta.layout != net._layout:
        raise ValueError("theta: Params layout does not match this network")
    if not np.isfinite(theta.data).all():
        raise ValueError("theta contains NaN or Inf")
    iterations = check.positive_int(iterations, "iterations")
    validate_every = check.positive_int(validate_every, "validate_every")
    checkpoint_every = check.positive_int(checkpoint_every, "checkpoint_every")
    seed = check.seed(seed)
    if solver is not None and not isinstance(solver, MGRIT):
        raise ValueError(f"solver must be an lp.MGRIT or None, got {solver!r}")
    if one_shot is not None:
        one_shot = check.positive_int(one_shot, "one_shot")
        if solver is None:
            raise ValueError("one_shot needs a solver (an lp.MGRIT) for its cycles")
    if lsgd and net.head != "regression":
        raise ValueError("lsgd needs a regression head")
    if target_accuracy is not None:
        target_accuracy = check.finite_float(target_accuracy, "target_accuracy")
        if validation is None or net.head != "classification":
            raise ValueError("target_accuracy needs validation data and a classification head")
    if resume and checkpoint is None:
        raise ValueError("resume needs a checkpoint directory")
    # In the network's dtype once here (a float32 net: float64 data rounded
    # once), so no call below converts the data again.
    X = _inputs(net, X, "X")
    Y = check.float_array(Y, "Y", 2, columns=net.n_out, rows=X.shape[0], dtype=net.dtype)
    n = X.shape[0]
    if batch_size is not None:
        batch_size = check.positive_int(batch_size, "batch_size", n)
    if validation is not None:
        Xv = _inputs(net, validation[0], "validation X")
        Yv = check.float_array(validation[1], "validation Y", 2, columns=net.n_out,
                               rows=Xv.shape[0], dtype=net.dtype)
        validation = (Xv, Yv)
    if checkpoint is not None and (not resume or os.path.exists(checkpoint)):
        ckpt.writable_here(checkpoint, net.rank)  # before any work that a save could lose
    return (iterations, validate_every, checkpoint_every, seed, solver, one_shot,
            target_accuracy, X, Y, batch_size, validation)


def _inputs(net, X, name):
    """The network's input array, checked (images for a conv net, rows otherwise)."""
    if hasattr(net, "check_inputs"):
        return net.check_inputs(X, name)
    return check.float_array(X, name, 2, columns=net.n_in, dtype=net.dtype)


def _kernel_paths(net):
    """The compute paths this process takes for the net's residual layers
    where more than one exists, chosen by a timing, as a checkpoint records
    them: {"narrow": bool} (dense widths 2, 4, 8, 16, 32, 64: the narrow or
    register-blocked kernels or the BLAS; conv 3x3 at 4, 8, 16 channels: the direct kernels or im2col + BLAS).
    Both are governed by the same mode (set_narrow_kernels)."""
    from . import _core, narrow_kernels

    dtype = np.dtype(net.dtype).name
    channels = getattr(net, "channels", None)
    if channels is not None:  # conv residual layers
        uses = _core.uses_conv_direct if dtype == "float64" else _core.uses_conv_direct32
        if not _core.conv_direct_shape(channels, net.kernel_size):
            return None
        return {"narrow": bool(uses(channels, net.kernel_size))}
    width = getattr(net, "width", None)
    if width not in (2, 4, 8, 16, 32, 64):
        return None
    return {"narrow": narrow_kernels(width, dtype)}


def _fingerprint(signature, theta, X, Y, validation, check_data, **options):
    """What must be equal on every rank: configuration, data shapes, the
    replicated parameters, and with ``check_data`` the data itself."""
    fp = {k: v for k, v in signature.items() if k != "rank"}
    fp.update(options)
    fp["X shape"], fp["Y shape"] = X.shape, Y.shape
    fp["validation shapes"] = None if validation is None else [a.shape for a in validation]
    fp["opening layer and head"] = collective.digest(np.concatenate(
        [theta.W_in.ravel(), theta.b_in, theta.W_out.ravel(), theta.b_out]))
    if check_data:
        fp["X"], fp["Y"] = collective.digest(X), collective.digest(Y)
        if validation is not None:
            fp["validation data"] = [collective.digest(a) for a in validation]
    return fp

"""Checkpoints of a training run: one consistent set of files per generation.

Every rank writes ``DIR/checkpoint.<iteration>.rank<r>.npz`` (its parameters,
the optimizer's state, the data-order RNG state, the MGRIT solvers' warm
states and the history so far) atomically and durably. Once every rank's
file of that iteration is durable (agreed collectively), rank 0 commits the
set by writing ``DIR/checkpoint.json`` (iteration, number of ranks, files),
and then each rank removes its files of other iterations. A kill at any
moment leaves at least one set complete on every rank.

Resume takes the newest iteration whose file exists on every rank, checks
every rank's file, and fails on every rank alike (naming the files) when no
set is complete or one file is corrupt, foreign or inconsistent; it never
waits on a rank that failed. All public functions here are collective over
``comm`` (None: one rank).
"""

import json
import math
import os
import re
import zipfile

import numpy as np

from . import _collective as collective
from ._files import temporary_name, write_atomic

FORMAT = 2
MANIFEST = "checkpoint.json"
_FILE = re.compile(r"checkpoint\.(\d+)\.rank(\d+)\.npz$")
_LEGACY = re.compile(r"checkpoint\.rank\d+\.npz$")


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt, inconsistent or from a different run."""


def path_for(directory, rank, iteration):
    """This rank's file of the set written after ``iteration`` steps."""
    return os.path.join(directory, f"checkpoint.{int(iteration)}.rank{rank}.npz")


def _size(comm):
    return 1 if comm is None else comm.Get_size()


def _files(directory, rank):
    """{iteration: file name} of this rank's checkpoint files in ``directory``."""
    found = {}
    for name in os.listdir(directory):
        m = _FILE.match(name)
        if m and int(m.group(2)) == rank:
            found[int(m.group(1))] = name
    return found


def _is_temporary(name, rank):
    """A temporary this rank (rank 0: also the manifest's) may have left behind."""
    if not name.endswith(".tmp"):
        return False
    if re.match(rf"\.checkpoint\.\d+\.rank{rank}\.npz\.", name):
        return True
    if re.match(rf"\.checkpoint\.probe\.rank{rank}\.", name):
        return True
    legacy = re.match(r"\.checkpoint\.[^.]+\.tmp$", name)  # mkstemp's, of older versions
    return rank == 0 and (name.startswith(f".{MANIFEST}.") or bool(legacy))


def _remove(directory, rank, keep=None, size=None):
    """Remove this rank's orphaned temporaries and its files of iterations other than ``keep``
    (a killed write leaves a temporary; a committed set makes older ones obsolete); rank 0
    also removes the files of ranks >= ``size`` (a run on more ranks, resumed on fewer)."""
    for name in os.listdir(directory):
        m = _FILE.match(name)
        stale = keep is not None and m and int(m.group(2)) == rank and int(m.group(1)) != keep
        if rank == 0 and size is not None and m and int(m.group(2)) >= size:
            stale = True
        if stale or _is_temporary(name, rank):
            try:
                os.unlink(os.path.join(directory, name))
            except OSError:  # already gone, or not ours to remove: harmless
                pass


# --------------------------------------------------------------------------- before training

def writable_here(directory, rank):
    """Local check (no communication): ``directory`` is, or can be made, a
    writable directory; this rank's orphaned temporaries are removed.
    CheckpointError naming the directory otherwise."""
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise CheckpointError(f"checkpoint {directory} exists and is not a directory")
    try:
        os.makedirs(directory, exist_ok=True)
        probe = temporary_name(os.path.join(directory, f".checkpoint.probe.rank{rank}"))
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        os.unlink(probe)
        _remove(directory, rank)
    except OSError as exc:
        raise CheckpointError(f"checkpoint directory {directory} is not writable: "
                              f"{exc.strerror or exc}") from None


def prepare(directory, rank, comm=None):
    """Collective :func:`writable_here`: every rank raises if any rank failed."""
    error = None
    try:
        writable_here(directory, rank)
    except CheckpointError as exc:
        error = exc
    collective.agree(comm, error, what="preparing the checkpoint directory",
                     peer_error=CheckpointError)


# --------------------------------------------------------------------------- saving

def _flatten(prefix, state, out):
    for key, value in state.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            _flatten(name + ".", value, out)
        elif isinstance(value, (list, tuple)) and value and isinstance(value[0], np.ndarray):
            out[name + ".__list__"] = np.array(len(value))
            for i, v in enumerate(value):
                out[f"{name}.{i}"] = v
        else:
            out[name] = np.asarray(value)


def _unflatten(prefix, arrays):
    state = {}
    keys = [k[len(prefix):] for k in arrays if k.startswith(prefix)]
    lists = {k[: -len(".__list__")] for k in keys if k.endswith(".__list__")}
    for k in sorted(keys):
        if k.endswith(".__list__"):
            continue
        head = k.split(".", 1)[0]
        if head in lists:
            continue
        if "." in k:
            state.setdefault(head, None)
        else:
            v = arrays[prefix + k]
            state[k] = v.item() if v.ndim == 0 else v
    for head in {k.split(".", 1)[0] for k in keys if "." in k} - lists:
        state[head] = _unflatten(prefix + head + ".", arrays)
    for name in lists:
        n = int(arrays[prefix + name + ".__list__"])
        state[name] = [arrays[f"{prefix}{name}.{i}"] for i in range(n)]
    return state


def save(directory, rank, *, signature, iteration, theta, optimizer_state, rng_state,
         history, warm_state=None, carried=None, kernels=None, comm=None):
    """Write this rank's file of the set after ``iteration`` steps, then commit
    the set once every rank's file is durable (collective over ``comm``).
    ``kernels``: the compute paths this rank took (a JSON-able dict), which a
    resume takes again so that its numbers are the uninterrupted run's."""
    if isinstance(iteration, bool) or not isinstance(iteration, (int, np.integer)) \
            or iteration < 0:
        raise ValueError(f"iteration must be a nonnegative integer, got {iteration!r}")
    error = None
    try:
        arrays = {
            "format": np.array(FORMAT),
            "signature": np.array(json.dumps(signature, sort_keys=True)),
            "iteration": np.array(int(iteration)),
            "theta": theta,
            "rng_state": np.array(json.dumps(rng_state)),
            "history": np.array(json.dumps(history)),
        }
        _flatten("opt.", optimizer_state, arrays)
        if warm_state is not None:
            arrays["warm_batch"] = np.array(warm_state[0])
            arrays["warm_states"] = warm_state[1]
        if kernels is not None:
            arrays["kernels"] = np.array(json.dumps(kernels, sort_keys=True))
        if carried is not None:  # the loss and gradient the next step starts from
            arrays["carried_loss"] = np.array(carried[0])
            arrays["carried_grad"] = carried[1]
        os.makedirs(directory, exist_ok=True)
        write_atomic(path_for(directory, rank, iteration), lambda f: np.savez(f, **arrays))
    except Exception as exc:  # disk full, directory gone: every rank must learn of it
        error = exc
    collective.agree(comm, error, what=f"writing its checkpoint file in {directory}",
                     peer_error=CheckpointError)
    # Every rank's file is durable: commit the set, then drop the older ones.
    size = _size(comm)
    error = None
    if rank == 0:
        manifest = {"format": FORMAT, "iteration": int(iteration), "ranks": size,
                    "files": [os.path.basename(path_for(directory, r, iteration))
                              for r in range(size)]}
        try:
            write_atomic(os.path.join(directory, MANIFEST),
                         lambda f: f.write(json.dumps(manifest, indent=1) + "\n"), binary=False)
        except Exception as exc:
            error = exc
    collective.agree(comm, error, what=f"committing the checkpoint in {directory}",
                     peer_error=CheckpointError)
    _remove(directory, rank, keep=int(iteration), size=size)


# --------------------------------------------------------------------------- loading

def _read_manifest(directory):
    path = os.path.join(directory, MANIFEST)
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            m = json.load(f)
        return {"iteration": int(m["iteration"]), "ranks": int(m["ranks"]),
                "files": [str(x) for x in m["files"]]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"checkpoint manifest {path} is unreadable: {exc}") from None


def _look(directory, rank):
    """This rank's view: its files, and on rank 0 the manifest and the highest
    rank any file in the directory belongs to."""
    if not os.path.exists(directory):
        raise CheckpointError(f"no checkpoint in {directory} (no such directory)")
    if not os.path.isdir(directory):
        raise CheckpointError(f"checkpoint {directory} exists and is not a directory")
    names = os.listdir(directory)
    every = sorted((int(m.group(1)), int(m.group(2))) for m in map(_FILE.match, names) if m)
    view = {"files": _files(directory, rank), "manifest": None, "top_rank": -1,
            "legacy": any(_LEGACY.match(n) for n in names), "every": every}
    if rank == 0:
        view["manifest"] = _read_manifest(directory)
        ranks = [int(m.group(2)) for m in map(_FILE.match, os.listdir(directory)) if m]
        view["top_rank"] = max(ranks, default=-1)
    return view


def _choose(directory, views, other_ranks):
    """(iteration, note, ranks that wrote it): the newest iteration whose file
    exists on every rank (the same answer on every rank: they all see the
    same views), and a note when the committed set is not that one. With
    ``other_ranks``, a set written by another number of ranks is taken when
    every rank sees all of its files."""
    size = len(views)
    manifest = views[0]["manifest"]
    written_by = manifest["ranks"] if manifest else views[0]["top_rank"] + 1
    if written_by > size or (manifest and written_by != size):
        if not other_ranks:
            raise CheckpointError(
                f"the checkpoint in {directory} was written by {written_by} ranks, this run "
                f"has {size}: resume with the same number of ranks")
        return _choose_other(directory, views, written_by)
    complete = set.intersection(*(set(v["files"]) for v in views))
    if not complete:
        if not any(v["files"] for v in views):
            if any(v["legacy"] for v in views):
                raise CheckpointError(f"the checkpoint in {directory} has an older layout "
                                      "(checkpoint.rank<r>.npz) that this version cannot resume")
            raise CheckpointError(f"no checkpoint in {directory}")
        found = "; ".join(
            f"rank {r} has " + (", ".join(sorted(v["files"].values())) or "no file")
            for r, v in enumerate(views))
        raise CheckpointError(f"no checkpoint in {directory} is complete on every rank "
                              f"({found})")
    iteration = max(complete)
    note = None
    if manifest and manifest["iteration"] > iteration:
        missing = [f"rank {r}" for r, v in enumerate(views)
                   if manifest["iteration"] not in v["files"]]
        note = (f"the checkpoint of iteration {manifest['iteration']} in {directory} lacks the "
                f"file of {', '.join(missing)}; resuming from iteration {iteration}")
    return iteration, note, size


def _choose_other(directory, views, written_by):
    """The newest set of ``written_by`` files that every rank of this run sees."""
    def complete(view):
        found = {}
        for it, r in view["every"]:
            found.setdefault(it, set()).add(r)
        return {it for it, rs in found.items() if rs >= set(range(written_by))}

    common = set.intersection(*(complete(v) for v in views))
    if not common:
        lacking = [r for r, v in enumerate(views) if not complete(v)]
        raise CheckpointError(
            f"the checkpoint in {directory} was written by {written_by} ranks; resuming on "
            f"{len(views)} needs every rank to see all {written_by} files of one checkpoint "
            f"(a shared file system), which rank(s) {', '.join(map(str, lacking or [0]))} "
            "do not")
    return max(common), None, written_by


def _finite(a, what, path):
    if not np.isfinite(a).all():
        raise CheckpointError(f"checkpoint {path} holds NaN or Inf in {what}")
    return a


def _read(path, signature, iteration, ignore=(), skip=()):
    """One file, checked: format, run signature (but the keys in ``ignore``),
    iteration, finite numbers; the entries in ``skip`` are not read."""
    if not zipfile.is_zipfile(path):
        size = os.path.getsize(path) if os.path.exists(path) else 0
        raise CheckpointError(f"checkpoint {path} is not an npz archive ({size} bytes; "
                              "truncated or overwritten?)")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files if k not in skip}
    except Exception as exc:
        raise CheckpointError(f"checkpoint {path} is unreadable: {exc}") from None
    try:
        if int(arrays["format"]) != FORMAT:
            raise CheckpointError(f"checkpoint {path} has format {int(arrays['format'])}, "
                                  f"this version reads format {FORMAT}")
        saved = json.loads(str(arrays["signature"]))
        expected = json.loads(json.dumps(signature, sort_keys=True))
        if not isinstance(saved, dict):
            raise CheckpointError(f"checkpoint {path} is corrupt: its run signature is no dict")
        for key in ignore:
            saved.pop(key, None)
            expected.pop(key, None)
        dtype = saved.get("dtype", "float64")  # none before float32 networks existed
        if "dtype" in expected:
            if dtype != expected["dtype"]:
                raise CheckpointError(f"checkpoint {path} holds a {dtype} run; this network "
                                      f"is {expected['dtype']} (create it with "
                                      f"dtype={dtype!r} to resume)")
            saved["dtype"] = dtype
        if saved != expected:
            diff = {k: (saved.get(k), expected.get(k)) for k in set(saved) | set(expected)
                    if saved.get(k) != expected.get(k)}
            raise CheckpointError(f"checkpoint {path} is from a different run: {diff}")
        it = int(arrays["iteration"])
        if it != iteration:
            raise CheckpointError(f"checkpoint {path} holds iteration {it}, its name says "
                                  f"{iteration}")
        history = json.loads(str(arrays["history"]))
        rng_state = json.loads(str(arrays["rng_state"]))
        theta = arrays["theta"]
        if theta.ndim != 1 or theta.dtype != np.dtype(dtype):
            raise CheckpointError(f"checkpoint {path} holds theta of dtype {theta.dtype} and "
                                  f"shape {theta.shape}, not a {dtype} vector")
        out = {
            "iteration": it,
            "theta": _finite(theta, "theta", path),
            "rng_state": rng_state,
            "history": history,
            "optimizer_state": _unflatten("opt.", arrays),
            "warm_state": None,
            "carried": None,
            "kernels": json.loads(str(arrays["kernels"])) if "kernels" in arrays else None,
            "path": path,
        }
        if "carried_grad" in arrays:
            loss = float(arrays["carried_loss"])
            if not math.isfinite(loss):
                raise CheckpointError(f"checkpoint {path} holds a non-finite loss")
            out["carried"] = (loss, _finite(arrays["carried_grad"], "the gradient", path))
        if "warm_states" in arrays:
            out["warm_state"] = (int(arrays["warm_batch"]),
                                 _finite(arrays["warm_states"], "the MGRIT states", path))
        return out
    except KeyError as exc:
        raise CheckpointError(f"checkpoint {path} lacks {exc}") from None
    except (ValueError, TypeError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"checkpoint {path} is corrupt: {exc}") from None


def load(directory, rank, signature, comm=None, other_ranks=False):
    """This rank's part of the newest set complete on every rank, as a dict
    (collective over ``comm``). Every rank raises CheckpointError alike when
    there is none, or when any rank's file is unreadable, foreign or
    inconsistent (the message names the file). ``state["note"]`` says when a
    newer committed set had to be skipped because a file was missing.

    With ``other_ranks``, a set written by another number of ranks is read
    too: then ``state["parts"]`` lists every writer's file (without MGRIT warm
    states, which belong to the old distribution) for the caller to
    redistribute; the signature's "rank" and "ranks" are not compared."""
    error, view = None, None
    try:
        view = _look(directory, rank)
    except (CheckpointError, OSError) as exc:
        error = exc if isinstance(exc, CheckpointError) else CheckpointError(
            f"cannot list the checkpoint directory {directory}: {exc.strerror or exc}")
    collective.agree(comm, error, what="looking for its checkpoint", peer_error=CheckpointError)
    views = [view] if _size(comm) < 2 else comm.allgather(view)
    # the same on every rank (they all see the same views): no agreement needed
    iteration, note, written_by = _choose(directory, views, other_ranks)
    error, state = None, None
    try:
        if written_by == _size(comm):
            state = _read(path_for(directory, rank, iteration), signature, iteration)
        else:
            parts = [_read(path_for(directory, r, iteration), signature, iteration,
                           ignore=("rank", "ranks"), skip=("warm_batch", "warm_states"))
                     for r in range(written_by)]
            state = dict(parts[0], parts=parts)
        state["note"] = note
    except CheckpointError as exc:
        error = exc
    collective.agree(comm, error, what="reading its checkpoint", peer_error=CheckpointError)
    return state

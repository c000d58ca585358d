"""Agreement across ranks: the one place where a check that can fail on some
ranks only becomes an error on every rank.

Under MPI a rank that raises alone leaves its peers waiting forever in the
next communication. So every such check (argument validation, shapes from
user callables, checkpoint contents, configuration) runs inside
:func:`checks` or ends in :func:`agree`: one small collective, after which
every rank raises if any rank failed (the failing rank its own error, the
others an error naming that rank and its reason), and every rank raises if
the ranks' fingerprints (configuration, data shapes, optionally contents)
differ. Without a communicator (or on one rank) both only re-raise locally.
"""

import contextlib
import hashlib
import json

import numpy as np


class RankMismatch(ValueError):
    """The ranks were given different configurations or data."""


def _size(comm):
    return 1 if comm is None else comm.Get_size()


def digest(value):
    """A short hex digest, equal across processes (Python's hash() is not):
    of an array's dtype, shape and bytes, or of any JSON-able value."""
    h = hashlib.blake2b(digest_size=8)
    if isinstance(value, np.ndarray):
        a = np.ascontiguousarray(value)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.data if a.size else b"")
    else:
        h.update(json.dumps(value, sort_keys=True, default=repr).encode())
    return h.hexdigest()


def _code(fingerprint):
    """The fingerprint as one signed 64-bit integer (0 for none)."""
    if fingerprint is None:
        return 0
    return int.from_bytes(bytes.fromhex(digest(fingerprint)), "little", signed=True)


def _describe(prints):
    """Which keys differ between the ranks' fingerprints, with each rank's value."""
    keys = sorted({k for p in prints if p for k in p})
    parts = []
    for k in keys:
        values = [None if p is None else p.get(k) for p in prints]
        if any(v != values[0] for v in values):
            shown = ", ".join(f"rank {r} {v}" for r, v in enumerate(values))
            parts.append(f"{k} ({shown})")
    return "; ".join(parts) or "fingerprints differ"


def agree(comm, error=None, fingerprint=None, what="", peer_error=ValueError):
    """Collective over ``comm``: every rank passes its own error (an exception
    or None) and optionally a fingerprint dict that must be equal everywhere.

    If some rank has an error, every rank raises: the ranks with one re-raise
    it, the others ``peer_error`` naming the lowest failing rank and its
    message. Otherwise, if the fingerprints differ, every rank raises
    :class:`RankMismatch` naming what differs and each rank's value.
    ``what`` says what was being done (for the message).
    """
    if _size(comm) < 2:
        if error is not None:
            raise error
        return
    size = comm.Get_size()
    local = np.array([0 if error is None else 1, _code(fingerprint)], dtype=np.int64)
    table = np.empty((size, 2), dtype=np.int64)
    comm.Allgather(local, table)
    failed = np.flatnonzero(table[:, 0])
    if failed.size:
        own = None if error is None else f"{type(error).__name__}: {error}"
        messages = comm.allgather(own)
        if error is not None:
            raise error
        r = int(failed[0])
        where = f" {what}" if what else ""
        raise peer_error(f"rank {r} failed{where}: {messages[r]}")
    if (table[:, 1] != table[0, 1]).any():
        prints = comm.allgather(fingerprint)
        where = f" {what}" if what else ""
        raise RankMismatch(f"the ranks disagree{where}: {_describe(prints)}")


class _Block:
    fingerprint = None


@contextlib.contextmanager
def checks(comm, what="", peer_error=ValueError):
    """Run a block of local checks, then agree on them collectively.

        with checks(comm, "in lp.solve") as c:
            u0 = validate(u0)
            c.fingerprint = {"u0": u0.shape}

    An exception in the block (after the agreement) is raised on this rank;
    the other ranks raise ``peer_error`` naming it. Every rank leaves the
    block at the same collective, so none is left waiting.
    """
    block = _Block()
    try:
        yield block
    except Exception as exc:  # agreed below, then raised everywhere
        agree(comm, exc, None, what, peer_error)
        raise
    agree(comm, None, block.fingerprint, what, peer_error)

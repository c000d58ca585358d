"""How many threads the compiled core uses by default, and how they wait.

- Waiting: OpenMP teams spin between parallel regions unless told otherwise
  (OMP_WAIT_POLICY, GOMP_SPINCOUNT). Spinning threads steal the cores of every
  other process on a shared node, so the core's OpenMP runtime starts with
  passive (blocking) waits unless the user set a policy. The runtime reads
  the variables once, when it is loaded: ``passive_waits`` sets them around
  the import of the compiled core and restores the environment afterwards
  (child processes and other libraries see the user's settings).
- Count: the CPUs this process may run on (its affinity mask), capped by the
  cgroup CPU quota (containers, batch jobs), divided among the MPI ranks on
  this node. ``OMP_NUM_THREADS`` or ``lp.set_num_threads`` override it.
"""

import contextlib
import math
import os

_WAIT_DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE"}


@contextlib.contextmanager
def passive_waits():
    """OMP_WAIT_POLICY=PASSIVE while the OpenMP runtime loads, unless the user set
    OMP_WAIT_POLICY or GOMP_SPINCOUNT (then theirs stands)."""
    added = []
    if not any(k in os.environ for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")):
        for k, v in _WAIT_DEFAULTS.items():
            os.environ[k] = v
            added.append(k)
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


def affinity_cpus():
    """CPUs in this process's affinity mask (all CPUs where that is unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def cgroup_cpus(root="/sys/fs/cgroup"):
    """The cgroup CPU quota in CPUs (rounded up), or None without a quota."""
    try:  # cgroup v2: "max 100000" or "200000 100000"
        with open(os.path.join(root, "cpu.max"), encoding="ascii") as f:
            quota, period = f.read().split()[:2]
        if quota != "max" and int(period) > 0:
            return max(1, math.ceil(int(quota) / int(period)))
        return None
    except (OSError, ValueError):
        pass
    try:  # cgroup v1
        with open(os.path.join(root, "cpu", "cpu.cfs_quota_us"), encoding="ascii") as f:
            quota = int(f.read())
        with open(os.path.join(root, "cpu", "cpu.cfs_period_us"), encoding="ascii") as f:
            period = int(f.read())
        if quota > 0 and period > 0:
            return max(1, math.ceil(quota / period))
    except (OSError, ValueError):
        pass
    return None


def launcher_node_ranks(world_size):
    """Ranks on this node as the MPI launcher announces it (MPICH/Hydra,
    Open MPI, Slurm); without such a hint all ``world_size`` ranks are
    assumed to share the node (never oversubscribes)."""
    for key in ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE", "SLURM_NTASKS_PER_NODE"):
        try:
            n = int(os.environ.get(key, ""))
        except ValueError:
            continue
        if n >= 1:
            return n
    return max(1, world_size)


def node_ranks(comm):
    """Ranks of ``comm`` sharing this node (MPI_COMM_TYPE_SHARED). Collective:
    every rank of ``comm`` must call it."""
    from mpi4py import MPI

    local = comm.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        return local.Get_size()
    finally:
        local.Free()


def default_threads(ranks_on_node=1, cpus=None, quota=None):
    """max(1, min(affinity CPUs, cgroup quota) // ranks on this node)."""
    cpus = affinity_cpus() if cpus is None else cpus
    quota = cgroup_cpus() if quota is None else quota
    if quota is not None:
        cpus = min(cpus, quota)
    return max(1, cpus // max(1, ranks_on_node))

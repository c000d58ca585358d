"""Random SIGKILLs of one rank of a checkpointed layer-parallel run, each
followed by a resume: the final weights must equal an uninterrupted run's
bit for bit, and no launch may hang.

    python bench/kill_resume.py [--ranks 2] [--kills 20] [--iterations 60] [--seed 0]

The worker is tests/mpi/kill_train.py (one-shot MGRIT, L-BFGS, mini-batches,
a checkpoint after every step). Each launch is killed a few steps after the
last committed checkpoint, at a random moment (often inside a checkpoint
write); the run counts kills that left an orphaned temporary file or an
incomplete newest set on disk.
"""

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "..", "tests", "mpi", "kill_train.py")
MPIEXEC = shutil.which("mpiexec") or shutil.which("mpiexec", path=os.path.dirname(sys.executable))


def launch(ranks, out, ck, iterations):
    for name in os.listdir(out):
        if name.startswith("pid.") or name == "progress":
            os.unlink(os.path.join(out, name))
    cmd = [MPIEXEC, "-n", str(ranks), sys.executable, "-m", "mpi4py", WORKER, out, ck,
           str(iterations)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                            start_new_session=True)


def finish(proc, timeout=60):
    """Wait for the job; a hang is killed and reported."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise RuntimeError("a launch hung") from None


def committed(ck):
    try:
        with open(os.path.join(ck, "checkpoint.json")) as f:
            return json.load(f)["iteration"]
    except OSError:
        return 0


def read_int(path):
    try:
        with open(path) as f:
            return int(f.read() or -1)
    except (OSError, ValueError):
        return -1


def on_disk(ck, ranks):
    """(orphaned temporaries, whether the newest iteration lacks some rank's file)."""
    names = os.listdir(ck) if os.path.isdir(ck) else []
    temps = sum(n.endswith(".tmp") for n in names)
    files = [re.match(r"checkpoint\.(\d+)\.rank(\d+)\.npz$", n) for n in names]
    its = {}
    for m in filter(None, files):
        its.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
    newest = max(its, default=None)
    return temps, newest is not None and len(its[newest]) < ranks


def run(ranks, kills, iterations, seed, work):
    rng = random.Random(seed)
    ref_out = os.path.join(work, "ref")
    os.makedirs(ref_out)
    t = time.perf_counter()
    if finish(launch(ranks, ref_out, os.path.join(ref_out, "ck"), iterations)) != 0:
        raise RuntimeError("the uninterrupted run failed")
    uninterrupted_s = time.perf_counter() - t
    reference = np.load(os.path.join(ref_out, "theta.npy"))

    out = os.path.join(work, "killed")
    ck = os.path.join(out, "ck")
    os.makedirs(out)
    done, temps, incomplete, launches = 0, 0, 0, 0
    while done < kills:
        start = committed(ck)
        if start >= iterations - 1:
            raise RuntimeError(f"the run ended after {done} kills; use more iterations")
        target = min(start + rng.randint(1, 3), iterations - 1)
        proc = launch(ranks, out, ck, iterations)
        launches += 1
        pids = [os.path.join(out, f"pid.rank{r}") for r in range(ranks)]
        while proc.poll() is None and read_int(os.path.join(out, "progress")) < target:
            time.sleep(0.002)
        if proc.poll() is not None:
            raise RuntimeError(f"launch {launches} ended before its kill (status {proc.poll()})")
        time.sleep(rng.uniform(0.0, 0.08))  # somewhere in the step or its checkpoint
        victim = rng.randrange(ranks)
        os.kill(read_int(pids[victim]), signal.SIGKILL)
        finish(proc)
        done += 1
        t_, inc = on_disk(ck, ranks)
        temps += t_ > 0
        incomplete += inc
        print(f"kill {done:2d}: rank {victim} after step {target}+, committed "
              f"{committed(ck)}, orphaned temporaries {t_}, newest set incomplete {inc}",
              flush=True)
    t = time.perf_counter()
    if finish(launch(ranks, out, ck, iterations)) != 0:
        raise RuntimeError("the final resume failed")
    launches += 1
    final = np.load(os.path.join(out, "theta.npy"))
    return {"ranks": ranks, "kills": done, "launches": launches,
            "kills_leaving_temporaries": temps, "kills_leaving_incomplete_set": incomplete,
            "bit_identical": bool(np.array_equal(final, reference)),
            "max_abs_difference": float(np.abs(final - reference).max()),
            "uninterrupted_s": round(uninterrupted_s, 2),
            "last_resume_s": round(time.perf_counter() - t, 2)}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--iterations", type=int, default=70)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as work:
        result = run(a.ranks, a.kills, a.iterations, a.seed, work)
    print(json.dumps(result))
    return 0 if result["bit_identical"] else 1


if __name__ == "__main__":
    sys.exit(main())

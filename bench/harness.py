"""One benchmark harness: variants timed interleaved (A, B, A, B, ...), min and median.

A shared or loaded machine drifts while a benchmark runs; timing variant A
completely, then B, charges the drift to their difference. Here every round
times each variant once (in a rotating order), so slow phases hit all variants
alike. Every summary carries the processor and the load average before and
after, so a reader can judge how quiet the machine was.

In a script::

    from harness import Variant, compare, machine
    rows = compare([Variant("1 thread", run, setup=lambda: lp.set_num_threads(1)),
                    Variant("2 threads", run, setup=lambda: lp.set_num_threads(2))],
                   min_seconds=2.0)

Across builds (e.g. the code before and after a change), each run of a
benchmark script in its own process, interleaved::

    python bench/harness.py --rounds 3 --variant before=/path/to/site-packages \\
        --variant after= -- bench/serial_vs.py --widths 64

runs ``serial_vs.py`` alternately with PYTHONPATH set to each path (empty: the
installed package), collects its JSON rows and prints, per row key, the
min and median of ``median_s`` (or ``--metric``) over the rounds.
``--interpreter NAME=PYTHON`` runs a variant with another Python (an editable
install in a virtual environment shadows PYTHONPATH, so a build installed
with ``pip install --target DIR`` is best run by the base interpreter).
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time


def processor():
    """The processor's model name (from /proc/cpuinfo where there is one)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def machine():
    """Processor, logical CPUs, CPUs this process may use, load averages (1, 5, 15 min)."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    return {"processor": processor(), "cpus": os.cpu_count(), "usable_cpus": usable,
            "load_avg": load_average()}


class Variant:
    """A named callable; ``setup`` (optional) runs before each of its timed turns
    and is not timed (e.g. setting the thread count)."""

    def __init__(self, name, fn, setup=None):
        self.name, self.fn, self.setup = name, fn, setup


def _turn(v, min_seconds, calls=None, clock=time.perf_counter):
    """Time v.fn until min_seconds have passed (at least once), or exactly
    ``calls`` times (MPI: every rank must make the same calls); per-call times
    by ``clock``."""
    if v.setup is not None:
        v.setup()
    times = []
    start = time.perf_counter()
    while (len(times) < calls if calls is not None
           else not times or time.perf_counter() - start < min_seconds):
        t0 = clock()
        v.fn()
        times.append(clock() - t0)
    return times


def compare(variants, rounds=5, min_seconds=0.5, warmup=1, calls=None, reduce=None,
            clock=time.perf_counter, settle=0.1):
    """Time the variants interleaved: ``rounds`` rounds, each giving every variant
    one turn of ~min_seconds/rounds, or of ``calls`` calls (order rotating by
    round). ``reduce(t)`` (e.g. the max over MPI ranks) is applied to every
    per-call time. ``clock`` measures each call (time.process_time: the
    process's CPU time, for one-thread runs on a loaded machine). Before each
    turn the harness sleeps ``settle`` seconds: the worker threads of the
    previous variant's thread pool (OpenBLAS's and PyTorch's keep spinning for
    a while after their last call) park first, so they do not take a core from
    the next variant. Returns one dict per variant: name, min_s, median_s (over all calls), calls, per_round
    (median of each round), machine before and load average after."""
    info = machine()
    for v in variants:
        if v.setup is not None:
            v.setup()
        for _ in range(warmup):
            v.fn()
    samples = {v.name: [] for v in variants}
    per_round = {v.name: [] for v in variants}
    turn = min_seconds / max(1, rounds)
    for r in range(rounds):
        k = r % len(variants)
        for v in variants[k:] + variants[:k]:
            if settle > 0:
                time.sleep(settle)
            t = _turn(v, turn, calls, clock)
            if reduce is not None:
                t = [reduce(x) for x in t]
            samples[v.name].extend(t)
            per_round[v.name].append(statistics.median(t))
    after = load_average()
    return [{"name": v.name, "min_s": min(samples[v.name]),
             "median_s": statistics.median(samples[v.name]), "calls": len(samples[v.name]),
             "per_round": per_round[v.name], "processor": info["processor"],
             "load_avg_before": info["load_avg"], "load_avg_after": after}
            for v in variants]


def _rows(stdout):
    out = []
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def _key(row, metric):
    return tuple(sorted((k, v) for k, v in row.items()
                        if k != metric and not isinstance(v, (float, list, dict))
                        and k not in ("reps", "calls")))


def main():
    ap = argparse.ArgumentParser(description="Run a benchmark script under several builds, "
                                             "interleaved; min and median per row.")
    ap.add_argument("--variant", action="append", required=True, metavar="NAME=PYTHONPATH",
                    help="a build: NAME=path put first on PYTHONPATH (empty: as installed)")
    ap.add_argument("--interpreter", action="append", default=[], metavar="NAME=PYTHON",
                    help="the Python that runs variant NAME (default: this one)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--metric", default="median_s")
    ap.add_argument("--launcher", default="", help="prefix, e.g. 'mpiexec -n 2'")
    ap.add_argument("script", nargs=argparse.REMAINDER, help="-- script.py [args]")
    args = ap.parse_args()
    script = args.script[1:] if args.script[:1] == ["--"] else args.script
    if not script:
        ap.error("give the benchmark script after --")
    variants = []
    for spec in args.variant:
        name, _, path = spec.partition("=")
        variants.append((name, path))
    pythons = dict(spec.partition("=")[::2] for spec in args.interpreter)
    results = {}  # (variant, key) -> [metric per round]
    info = machine()
    print(json.dumps({"harness": "start", **info, "script": script}), flush=True)
    for r in range(args.rounds):
        k = r % len(variants)
        for name, path in variants[k:] + variants[:k]:
            env = dict(os.environ)
            if path:
                env["PYTHONPATH"] = path + os.pathsep + env.get("PYTHONPATH", "")
            cmd = args.launcher.split() + [pythons.get(name) or sys.executable] + script
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                sys.stderr.write(proc.stderr)
                raise SystemExit(f"{name}: {' '.join(cmd)} failed ({proc.returncode})")
            for row in _rows(proc.stdout):
                if args.metric in row:
                    results.setdefault((name, _key(row, args.metric)), []).append(
                        row[args.metric])
    after = load_average()
    for (name, key), vals in results.items():
        print(json.dumps({"variant": name, **dict(key), f"min_{args.metric}": min(vals),
                          f"median_{args.metric}": statistics.median(vals),
                          "rounds": len(vals), "processor": info["processor"],
                          "load_avg_before": info["load_avg"], "load_avg_after": after}),
              flush=True)


if __name__ == "__main__":
    main()

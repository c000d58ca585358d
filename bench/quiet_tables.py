"""The performance tables in one run (< 8 minutes on 2 cores), for a quiet machine.

Runs, each in its own process and timed by bench/harness.py (interleaved
variants, min and median, the processor and the load average in every row):

  serial    serial_vs.py: forward+backward, 64 layers, batch 1000, widths
            8 / 64 / 256, against numpy's 3N GEMMs and PyTorch (eager,
            float64), at the default threads and at 1 thread;
  peaks     train_peaks.py --parts xbraid: the original code's peaks
            configuration, seconds per L-BFGS iteration (default threads and 1);
  torchbraid  the torchbraid configuration (width 8, 32 layers, batch 5000,
            3 levels, FCF, 2 iterations, forward + backward), MGRIT and serial
            (torchbraid itself, where installed: bench/torchbraid_vs.py),
            narrow kernels chosen by measurement ("auto") against the BLAS
            path ("off"), with the step count the engine reports;
  loaded    threads_loaded.py --modes loaded: the default threads against
            --threads 1 while one competing busy process spins.

    python bench/quiet_tables.py [--parts serial peaks torchbraid loaded] [--quick]

Prints every JSON row as it comes, then the tables in Markdown (stdout).
Run it without OMP_NUM_THREADS / OMP_WAIT_POLICY in the environment so the
package's own thread defaults are what is measured.
"""

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from harness import Variant, compare, machine  # noqa: E402


def run_script(args, label):
    """Run bench/<script> args in a subprocess; its JSON rows."""
    t0 = time.perf_counter()
    cmd = [sys.executable, os.path.join(HERE, args[0])] + args[1:]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"{label}: {' '.join(cmd)} failed ({proc.returncode})")
    rows = []
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue
            print(line, flush=True)
    print(f"# {label}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return rows


def torchbraid_rows(min_seconds, rounds):
    import layerparallel as lp

    X, Y = lp.datasets.peaks(n=5000, seed=0)
    net = lp.ODEResNet(2, 8, 32, 5, T=5.0, activation="relu")
    theta = net.init("he", seed=0)
    theta.data[...] *= 0.5
    mg = lp.MGRIT(cfactor=4, max_levels=3, relax="FCF", tol=None, rtol=None, max_iter=2,
                  warm_start=False)
    info = {}

    def mgrit():
        info.update(net.loss_and_grad(theta, X, Y, solver=mg)[2])

    def serial():
        net.loss_and_grad(theta, X, Y)

    def mode(m):
        def setup():
            lp.set_narrow_kernels(m)  # forgets the timing's choice ...
            lp.narrow_kernels(8)      # ... so choose again here, not inside the timed calls
        return setup

    chosen = lp.narrow_kernels(8)  # runs the width-8 selection once
    rows = compare([Variant("mgrit auto", mgrit, setup=mode("auto")),
                    Variant("mgrit off", mgrit, setup=mode("off")),
                    Variant("serial auto", serial, setup=mode("auto")),
                    Variant("serial off", serial, setup=mode("off"))],
                   rounds=rounds, min_seconds=min_seconds * 4)
    lp.set_narrow_kernels("auto")
    out = []
    for r in rows:
        row = dict(bench="quiet_tables", part="torchbraid", variant=r["name"],
                   threads=lp.get_num_threads(), narrow_chosen_w8=chosen,
                   median_s=r["median_s"], min_s=r["min_s"], calls=r["calls"],
                   processor=r["processor"], load_avg=r["load_avg_before"])
        if r["name"].startswith("mgrit"):
            row.update(steps_forward=info["forward"]["steps"],
                       steps_adjoint=info["adjoint"]["steps"])
        print(json.dumps(row), flush=True)
        out.append(row)
    return out


def fmt_ms(s):
    return f"{s * 1e3:.2f}"


def tables(rows):
    print("\n## Tables\n")
    info = machine()
    print(f"Processor: {info['processor']}, {info['cpus']} CPUs "
          f"({info['usable_cpus']} usable); load average at the end {info['load_avg']}.\n")
    serial = [r for r in rows if r.get("bench") == "serial_vs"]
    if serial:
        print("| width | threads | ours ms (min / median) | PyTorch ms (median) | "
              "PyTorch / ours | ours / numpy GEMM rate |")
        print("|---|---|---|---|---|---|")
        keys = sorted({(r["width"], r["threads"]) for r in serial})
        for w, t in keys:
            by = {r["impl"]: r for r in serial if r["width"] == w and r["threads"] == t}
            ours = by.get("layerparallel")
            torch = by.get("pytorch_eager")
            gemm = by.get("numpy_3N_gemm")
            if ours is None:
                continue
            rate = (gemm["gflops_layerparallel_gemm_equiv"] / gemm["gflops_numpy"]
                    if gemm else float("nan"))
            print(f"| {w} | {t} | {fmt_ms(ours['min_s'])} / {fmt_ms(ours['median_s'])} | "
                  f"{fmt_ms(torch['median_s']) if torch else '-'} | "
                  f"{torch['ratio_vs_layerparallel']:.2f}x | {rate:.2f} |"
                  if torch else
                  f"| {w} | {t} | {fmt_ms(ours['min_s'])} / {fmt_ms(ours['median_s'])} | - | - "
                  f"| {rate:.2f} |")
        print()
    peaks = [r for r in rows if r.get("part") == "xbraid_config"]
    if peaks:
        print("| peaks (original code's configuration) | s / iteration (min / median) | "
              "vs original (0.635 s) |")
        print("|---|---|---|")
        for r in peaks:
            print(f"| {r['variant']} | {r['per_iteration_min_s']:.4f} / "
                  f"{r['per_iteration_median_s']:.4f} | {r['speedup_vs_xbraid']:.1f}x |")
        print()
    tb = [r for r in rows if r.get("part") == "torchbraid"]
    if tb:
        # torchbraid itself is timed beside ours by bench/torchbraid_vs.py
        print("| torchbraid configuration | ms (min / median) | steps fwd / adj |")
        print("|---|---|---|")
        for r in tb:
            steps = (f"{r['steps_forward']} / {r['steps_adjoint']}"
                     if "steps_forward" in r else "-")
            print(f"| {r['variant']} ({r['threads']} threads, narrow w8: "
                  f"{r['narrow_chosen_w8']}) | {fmt_ms(r['min_s'])} / {fmt_ms(r['median_s'])} "
                  f"| {steps} |")
        print()
    loaded = [r for r in rows if r.get("bench") == "threads_loaded"]
    if loaded:
        print("| case (1 busy process) | default / 1 thread (median) | (min) | "
              "1 thread ms | default ms |")
        print("|---|---|---|---|---|")
        for r in loaded:
            print(f"| {r['case']} | {r['ratio_median']:.2f} | {r['ratio_min']:.2f} | "
                  f"{fmt_ms(r['one_thread_median_s'])} | {fmt_ms(r['default_median_s'])} |")
        print()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parts = ["serial", "peaks", "torchbraid", "loaded"]
    ap.add_argument("--parts", nargs="+", default=parts, choices=parts)
    ap.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    args = ap.parse_args()
    for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY"):
        if k in os.environ:
            print(f"# warning: {k}={os.environ[k]} is set; the package's defaults are not "
                  "what is measured", file=sys.stderr)
    rounds = 2 if args.quick else 5
    ms = 0.2 if args.quick else 0.5
    print(json.dumps({"bench": "quiet_tables", "start": machine()}), flush=True)
    t0 = time.perf_counter()
    rows = []
    if "serial" in args.parts:
        for threads in ([] if args.quick else [None]) + [1]:
            extra = [] if threads is None else ["--threads", str(threads)]
            rows += run_script(["serial_vs.py", "--min-seconds", str(ms), "--rounds",
                                str(rounds)] + extra, f"serial_vs threads={threads or 'default'}")
    if "peaks" in args.parts:
        rows += run_script(["train_peaks.py", "--parts", "xbraid", "--xbraid-iterations",
                            "10" if args.quick else "20", "--rounds", "2" if args.quick else "3"],
                           "train_peaks xbraid")
    if "torchbraid" in args.parts:
        rows += torchbraid_rows(ms, rounds)
    if "loaded" in args.parts:
        rows += run_script(["threads_loaded.py", "--modes", "loaded", "--widths", "8", "64",
                            "256", "--min-seconds", str(2 * ms), "--rounds", str(rounds + 1)],
                           "threads_loaded loaded")
    print(json.dumps({"bench": "quiet_tables", "seconds": time.perf_counter() - t0,
                      "end": machine()}), flush=True)
    tables(rows)


if __name__ == "__main__":
    main()

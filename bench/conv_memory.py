"""Peak memory of one conv ODE-ResNet loss-and-gradient: ours against PyTorch eager.

Each configuration runs in a fresh process (bench/conv.py's networks: 28 x 28
one-channel images, L residual 3 x 3 conv layers with C channels, relu,
average pooling, 10 classes): the network and data are built, the resident
set size is read (baseline), one loss and full gradient is evaluated, and the
process's peak resident set size is read (getrusage). Run at two depths L1 <
L2, the growth per layer is (peak(L2) - peak(L1)) / (L2 - L1), and the peak at
the target depth is extrapolated linearly: both our sweeps (states u_n and
z_n of every layer) and PyTorch's autograd tape grow linearly in L.

    python bench/conv_memory.py [--batch 1000] [--layers 2,6] [--target 128]
        [--channels 8,16] [--dtypes float32,float64] [--variants ours,torch]

Rows: {"bench": "conv_memory", "variant", "dtype", "channels", "batch",
"layers", "baseline_gb", "peak_gb"} per run, then per configuration
{"per_layer_gb", "target_layers", "target_peak_gb"}.
"""

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def child(variant, dtype, channels, batch, layers):
    import resource

    sys.path.insert(0, HERE)
    import conv

    def rss_gb():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e9

    if variant == "ours":
        run = conv.ours(layers, channels, batch, dtype=dtype)
    else:
        import torch

        torch.set_num_threads(1)
        run = conv.torch_net(layers, channels, batch, getattr(torch, dtype))
    base = rss_gb()
    run()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # KiB on Linux
    print(json.dumps({"bench": "conv_memory", "variant": variant, "dtype": dtype,
                      "channels": channels, "batch": batch, "layers": layers,
                      "baseline_gb": round(base, 3), "peak_gb": round(peak, 3)}), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--layers", default="2,6")
    ap.add_argument("--target", type=int, default=128)
    ap.add_argument("--channels", default="8,16")
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--variants", default="ours,torch")
    ap.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        v, dt, c, b, n = args.child
        return child(v, dt, int(c), int(b), int(n))
    L1, L2 = (int(x) for x in args.layers.split(","))
    for v in args.variants.split(","):
        for dt in args.dtypes.split(","):
            for c in (int(x) for x in args.channels.split(",")):
                peaks = []
                for n in (L1, L2):
                    out = subprocess.run([sys.executable, __file__, "--child", v, dt, str(c),
                                          str(args.batch), str(n)], capture_output=True,
                                         text=True, check=True)
                    row = json.loads(out.stdout.strip().splitlines()[-1])
                    print(json.dumps(row), flush=True)
                    peaks.append(row["peak_gb"])
                per_layer = (peaks[1] - peaks[0]) / (L2 - L1)
                print(json.dumps({"bench": "conv_memory", "variant": v, "dtype": dt,
                                  "channels": c, "batch": args.batch,
                                  "per_layer_gb": round(per_layer, 4),
                                  "target_layers": args.target,
                                  "target_peak_gb": round(peaks[1] + per_layer * (args.target - L2), 2)}),
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark tinydiff's U-Net (training step and sampling pass) against the same U-Net in PyTorch.

    python benchmarks/bench_unet.py --threads 2
    python benchmarks/bench_unet.py --configs digits --steps 20
    python benchmarks/bench_unet.py --profile /tmp      # also write cProfile reports (not timed)

For each reference configuration of shared/DESIGN.md (random data, fixed seeds):

* the parameter count (tinydiff's; the PyTorch twin in ``torch_unet.py`` must have the same,
  and with ``--check`` its output on tinydiff's copied weights must match);
* ms per training step: forward on ``x_t`` with random ``t`` in [0, 1000), MSE loss against
  random noise, backward, Adam step, EMA update -- the median over ``--steps`` steps after
  ``--warmup`` steps;
* ms per sampling forward pass at batch ``--sample-batch`` (64) under ``no_grad``, median;
* when PyTorch is importable, the same for the twin (``torch.set_num_threads(threads)``,
  ``torch.optim.Adam``, a hand-written EMA), timed in the same run with tinydiff and PyTorch
  interleaved step by step, and the ratio tinydiff / PyTorch;
* the peak memory of a digits training step, measured in a fresh subprocess that runs only
  tinydiff (see ``measure_memory``).

Prints a markdown table, the targets of issue 4 with a verdict, and a machine line.
Runs (printing tinydiff's numbers only) when torch is not importable.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import subprocess
import sys
import time
import tracemalloc

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # run from a checkout without installing

# PyTorch, when installed, is loaded before tinydiff: tinydiff sets OMP_WAIT_POLICY=PASSIVE
# for numba's OpenMP pool when it is imported, and PyTorch's OpenMP runtime, loaded after,
# would inherit the setting (it measured slower with it: an unfair comparison)
if not {"--no-torch", "--_memory-child"} & set(sys.argv):  # the memory child is tinydiff alone
    try:
        import torch  # noqa: F401
    except Exception:  # not installed, or broken: the benchmark runs without it
        pass

import numba  # noqa: E402

import tinydiff  # noqa: E402
import tinydiff.nn as tdnn  # noqa: E402
import tinydiff.optim as tdoptim  # noqa: E402
from tinydiff.autograd.kernels import get_num_threads, set_num_threads  # noqa: E402
from tinydiff.nn import functional as tdF  # noqa: E402

# name: (UNet kwargs, training batch); DESIGN.md's reference configurations
CONFIGS = {
    "digits": (dict(in_channels=1, image_size=8, base_channels=32, channel_mults=(1, 2),
                    num_res_blocks=1, attn_resolutions=(4,)), 128),
    "mnist": (dict(in_channels=1, image_size=28, base_channels=32, channel_mults=(1, 2, 2),
                   num_res_blocks=2, attn_resolutions=(7,)), 64),
    "cifar": (dict(in_channels=3, image_size=32, base_channels=64, channel_mults=(1, 2, 2, 2),
                   num_res_blocks=2, attn_resolutions=(16,)), 32),
}
# required ratio tinydiff / PyTorch of the training step (issue 4), and the aim
REQUIRED_RATIO = {"digits": 3.0, "mnist": 2.5, "cifar": 2.5}
AIM_RATIO = 1.5
MEMORY_LIMIT_MIB = 1024.0
T_STEPS = 1000
LR, EMA_DECAY = 2e-4, 0.9999


def _torch():
    """``(torch, torch_unet)`` or ``(None, None)`` when PyTorch is not importable."""
    try:
        import torch

        sys.path.insert(0, HERE)
        import torch_unet
    except Exception:  # ImportError, or a broken install
        return None, None
    return torch, torch_unet


# --------------------------------------------------------------------------- tinydiff side
class TinydiffRunner:
    def __init__(self, name: str, seed: int = 0):
        kwargs, batch = CONFIGS[name]
        self.name, self.batch = name, batch
        self.model = tdnn.UNet(**kwargs, rng=seed)
        self.opt = tdoptim.Adam(self.model.parameters(), lr=LR)
        self.ema = tdoptim.EMA(self.model, EMA_DECAY)
        rng = np.random.default_rng(seed + 1)
        c, s = kwargs["in_channels"], kwargs["image_size"]
        self.x = rng.standard_normal((batch, c, s, s)).astype(np.float32)
        self.noise = rng.standard_normal((batch, c, s, s)).astype(np.float32)
        self.x_sample = rng.standard_normal((64, c, s, s)).astype(np.float32)
        self.rng = rng

    def num_parameters(self) -> int:
        return int(sum(p.data.size for p in self.model.parameters()))

    def train_step(self, batch=None) -> float:
        b = batch or self.batch
        t = self.rng.integers(0, T_STEPS, size=b)
        self.opt.zero_grad()
        out = self.model(tinydiff.Tensor(self.x[:b]), t)
        loss = tdF.mse_loss(out, tinydiff.Tensor(self.noise[:b]))
        loss.backward()
        self.opt.step()
        self.ema.update()
        return float(loss.data)

    def sample_pass(self, batch: int = 64):
        t = np.full(batch, 500)
        with tinydiff.no_grad():
            return self.model(tinydiff.Tensor(self.x_sample[:batch]), t).data


# --------------------------------------------------------------------------- PyTorch side
class TorchRunner:
    def __init__(self, name: str, torch, torch_unet, seed: int = 0):
        kwargs, batch = CONFIGS[name]
        self.torch, self.batch = torch, batch
        torch.manual_seed(seed)
        self.model = torch_unet.TorchUNet(**kwargs)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=LR)
        self.ema = torch_unet.TorchEMA(self.model, EMA_DECAY)
        g = torch.Generator().manual_seed(seed + 1)
        c, s = kwargs["in_channels"], kwargs["image_size"]
        self.x = torch.randn(batch, c, s, s, generator=g)
        self.noise = torch.randn(batch, c, s, s, generator=g)
        self.x_sample = torch.randn(64, c, s, s, generator=g)
        self.g = g
        self.torch_unet = torch_unet

    def num_parameters(self) -> int:
        return self.torch_unet.num_parameters(self.model)

    def train_step(self) -> float:
        torch = self.torch
        t = torch.randint(0, T_STEPS, (self.batch,), generator=self.g)
        self.opt.zero_grad(set_to_none=True)
        out = self.model(self.x, t)
        loss = torch.nn.functional.mse_loss(out, self.noise)
        loss.backward()
        self.opt.step()
        self.ema.update()
        return float(loss.item())

    def sample_pass(self, batch: int = 64):
        torch = self.torch
        t = torch.full((batch,), 500)
        with torch.no_grad():
            return self.model(self.x_sample[:batch], t)


def check_equivalence(name: str, torch, torch_unet) -> float:
    """Max |tinydiff - torch| / max|torch| of the outputs on identical weights (every zero-initialised
    conv re-drawn, so that every path matters)."""
    kwargs, _ = CONFIGS[name]
    td_model = tdnn.UNet(**kwargs, rng=123)
    rng = np.random.default_rng(7)
    for p in td_model.parameters():
        p.data[...] = (rng.standard_normal(p.data.shape) * 0.1).astype(np.float32)
    tm = torch_unet.TorchUNet(**kwargs)
    torch_unet.load_tinydiff_state(tm, td_model)
    c, s = kwargs["in_channels"], kwargs["image_size"]
    x = rng.standard_normal((4, c, s, s)).astype(np.float32)
    t = np.array([0, 10, 500, 999])
    with tinydiff.no_grad():
        a = td_model(tinydiff.Tensor(x), t).data
    with torch.no_grad():
        b = tm(torch.from_numpy(x), torch.from_numpy(t)).numpy()
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


# --------------------------------------------------------------------------- timing
SETTLE_S = 0.2


def _timed(fn) -> float:
    """Wall time of ``fn()`` in ms, after a short untimed pause: the thread pools of the library that
    ran before (numba's OpenMP workers, OpenBLAS's, PyTorch's OpenMP) spin-wait for a while after
    their last job, and would otherwise steal the cores from the library being timed."""
    if SETTLE_S > 0:
        time.sleep(SETTLE_S)
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


def bench_config(name, steps, warmup, sample_batch, sample_reps, torch, torch_unet):
    """Times for one config: tinydiff and (if present) PyTorch, interleaved step by step."""
    td = TinydiffRunner(name)
    th = TorchRunner(name, torch, torch_unet) if torch is not None else None
    row = dict(config=name, batch=td.batch, params=td.num_parameters(),
               torch_params=th.num_parameters() if th else None)
    t0 = time.perf_counter()
    td.train_step()  # first call: numba compile or cache load
    row["first_step_s"] = time.perf_counter() - t0

    td_train, th_train = [], []
    for i in range(warmup + steps):
        a = _timed(td.train_step)
        b = _timed(th.train_step) if th else None
        if i >= warmup:
            td_train.append(a)
            if th:
                th_train.append(b)
    td_samp, th_samp = [], []
    for i in range(1 + sample_reps):
        a = _timed(lambda: td.sample_pass(sample_batch))
        b = _timed(lambda: th.sample_pass(sample_batch)) if th else None
        if i >= 1:
            td_samp.append(a)
            if th:
                th_samp.append(b)
    row["td_train_ms"] = float(np.median(td_train))
    row["td_train_min_ms"] = float(np.min(td_train))
    row["td_sample_ms"] = float(np.median(td_samp))
    if th:
        row["th_train_ms"] = float(np.median(th_train))
        row["th_train_min_ms"] = float(np.min(th_train))
        row["th_sample_ms"] = float(np.median(th_samp))
    return row


def _cpu_snapshot():
    """(busy CPU-seconds of the whole machine, of this process and its children, wall time), or None."""
    import resource

    try:
        with open("/proc/stat") as f:
            v = [int(a) for a in f.readline().split()[1:]]
    except OSError:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    busy = (sum(v[:8]) - v[3] - v[4]) / tick  # all but idle and iowait
    me = sum(getattr(resource.getrusage(w), k) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
             for k in ("ru_utime", "ru_stime"))
    return busy, me, time.perf_counter()


def _others_load(start, end):
    """Mean number of cores other processes kept busy between two snapshots."""
    if start is None or end is None:
        return None
    return max(0.0, ((end[0] - start[0]) - (end[1] - start[1])) / max(end[2] - start[2], 1e-9))


# --------------------------------------------------------------------------- memory
def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _hwm_mib() -> float:
    """Peak RSS: VmHWM (resettable through clear_refs) if readable, else ru_maxrss."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # Linux: reset the peak-RSS counter (VmHWM) to the current RSS
        return True
    except OSError:
        return False


def memory_child(name: str, steps: int) -> dict:
    """Runs in the subprocess: peak memory of ``steps`` training steps of config ``name``."""
    td = TinydiffRunner(name)
    td.train_step(batch=2)  # compile every kernel (or load numba's cache) on a tiny batch;
    base = _rss_mib()  # Adam + EMA state are allocated too: what stays is the model's, not the step's
    reset = _reset_hwm()
    hwm_before = _hwm_mib()
    tracemalloc.start()
    for _ in range(steps):
        td.train_step()
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak = _hwm_mib()
    import resource

    return dict(
        rss_before_mib=base, peak_rss_mib=peak, hwm_reset=reset, hwm_before_mib=hwm_before,
        step_increase_mib=peak - base, tracemalloc_peak_mib=traced_peak / 2**20,
        ru_maxrss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )


def measure_memory(name: str, threads: int, steps: int = 2, extra=()) -> dict | None:
    cmd = [sys.executable, os.path.abspath(__file__), "--_memory-child", name, "--threads", str(threads),
           "--steps", str(steps)] + list(extra)
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=True).stdout
        return json.loads(out.strip().splitlines()[-1])
    except Exception as e:  # report, but do not lose the timing table
        print(f"memory measurement failed: {e}", file=sys.stderr)
        return None


# --------------------------------------------------------------------------- profile
def profile_config(name: str, steps: int, out_dir: str, top: int = 25) -> str:
    td = TinydiffRunner(name)
    td.train_step()
    td.train_step()
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(steps):
        td.train_step()
    prof.disable()
    buf = io.StringIO()
    st = pstats.Stats(prof, stream=buf)
    buf.write(f"# tinydiff {name} training step (batch {td.batch}), {steps} steps, "
              f"{get_num_threads()} threads; cProfile sorted by tottime\n")
    st.sort_stats("tottime").print_stats(top)
    buf.write("\n# the same, by cumulative time\n")
    st.sort_stats("cumulative").print_stats(top)
    path = os.path.join(out_dir, f"tinydiff_profile_{name}.txt")
    with open(path, "w") as f:
        f.write(buf.getvalue())
    return path


# --------------------------------------------------------------------------- report
def _fmt(v, spec="{:.1f}"):
    return "-" if v is None else spec.format(v)


def main(argv=None):
    global SETTLE_S
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configs", default="digits,mnist,cifar")
    ap.add_argument("--steps", type=int, default=7, help="timed training steps per config (median)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sample-batch", type=int, default=64)
    ap.add_argument("--sample-reps", type=int, default=5)
    ap.add_argument("--settle", type=float, default=SETTLE_S,
                    help="untimed pause (s) before each timed call, so the other library's spinning "
                         "threads go idle (0 to disable)")
    ap.add_argument("--numpy-blas-threads", type=int, default=None, metavar="N",
                    help="experiment: after the library's thread policy, give numpy's OpenBLAS N threads "
                         "(the policy gives it --threads; 1 avoids ping-pong with numba's OpenMP pool)")
    ap.add_argument("--no-torch", action="store_true", help="skip PyTorch even if importable")
    ap.add_argument("--no-memory", action="store_true", help="skip the memory subprocess")
    ap.add_argument("--check", action="store_true",
                    help="also check the PyTorch twin's output against tinydiff's on shared weights")
    ap.add_argument("--profile", metavar="DIR", default=None,
                    help="write cProfile reports of a training step per config to DIR (after the table)")
    ap.add_argument("--_memory-child", dest="memory_child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    SETTLE_S = args.settle
    # import PyTorch BEFORE numba starts its OpenMP thread pool: imported after it, PyTorch ran the
    # digits step ~2.4x slower on the reference machine (measured), which would flatter tinydiff
    torch, torch_unet = (None, None) if args.no_torch or args.memory_child else _torch()
    set_num_threads(args.threads)
    if args.numpy_blas_threads is not None:
        from tinydiff.autograd.kernels import threads as _threads

        _threads._set_openblas_threads("numpy", args.numpy_blas_threads)
    if args.memory_child:
        print(json.dumps(memory_child(args.memory_child, args.steps)))
        return 0

    if torch is not None:
        torch.set_num_threads(args.threads)
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    for n in names:
        if n not in CONFIGS:
            ap.error(f"unknown config {n!r}; choose from {', '.join(CONFIGS)}")

    snap0 = _cpu_snapshot()
    rows = []
    for name in names:
        row = bench_config(name, args.steps, args.warmup, args.sample_batch, args.sample_reps, torch, torch_unet)
        if torch is not None and args.check:
            row["check"] = check_equivalence(name, torch, torch_unet)
        rows.append(row)
        print(f"# {name}: done ({row['td_train_ms']:.0f} ms/step)", file=sys.stderr, flush=True)
    others = _others_load(snap0, _cpu_snapshot())
    mem = None if args.no_memory or "digits" not in names else measure_memory(
        "digits", args.threads,
        extra=() if args.numpy_blas_threads is None else ("--numpy-blas-threads", str(args.numpy_blas_threads)))

    blas = "" if args.numpy_blas_threads is None else f" --numpy-blas-threads {args.numpy_blas_threads}"
    print(f"\n`python benchmarks/bench_unet.py --threads {args.threads} --steps {args.steps}{blas}` "
          f"(median of {args.steps} steps after {args.warmup} warm-up; sampling: median of "
          f"{args.sample_reps} passes at batch {args.sample_batch})\n")
    print("| config | batch | params | train ms/step tinydiff | PyTorch | ratio | required | "
          "sample ms/pass tinydiff | PyTorch | ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    verdicts = []
    for r in rows:
        ratio_t = r["td_train_ms"] / r["th_train_ms"] if "th_train_ms" in r else None
        ratio_s = r["td_sample_ms"] / r["th_sample_ms"] if "th_sample_ms" in r else None
        req = REQUIRED_RATIO[r["config"]]
        params = f"{r['params']:,}"
        if r["torch_params"] is not None and r["torch_params"] != r["params"]:
            params += f" (PyTorch {r['torch_params']:,}!)"
        print(f"| {r['config']} | {r['batch']} | {params} | {_fmt(r['td_train_ms'])} | "
              f"{_fmt(r.get('th_train_ms'))} | {_fmt(ratio_t, '{:.2f}x')} | <= {req:g}x | "
              f"{_fmt(r['td_sample_ms'])} | {_fmt(r.get('th_sample_ms'))} | {_fmt(ratio_s, '{:.2f}x')} |")
        if ratio_t is not None:
            ok = ratio_t <= req
            verdicts.append(ok)
            note = f"{'met' if ok else 'NOT met'} ({ratio_t:.2f}x <= {req:g}x)"
            if ratio_t <= AIM_RATIO:
                note += f"; within the {AIM_RATIO}x aim"
        else:
            note = "no PyTorch, ratio not measured"
        r["note"] = note

    print("\nNotes:")
    for r in rows:
        same = ("" if r["torch_params"] is None else
                ("; PyTorch twin has the same parameter count" if r["torch_params"] == r["params"]
                 else f"; PARAMETER COUNT DIFFERS: PyTorch {r['torch_params']:,}"))
        chk = f"; outputs on shared weights agree to {r['check']:.1e} (relative)" if "check" in r else ""
        best = (f"; best-step ratio {r['td_train_min_ms'] / r['th_train_min_ms']:.2f}x "
                f"({r['td_train_min_ms']:.0f} / {r['th_train_min_ms']:.0f} ms)" if "th_train_min_ms" in r else "")
        print(f"- {r['config']}: training step within {REQUIRED_RATIO[r['config']]:g}x of PyTorch: {r['note']}"
              f"{best}{same}{chk}; first step (numba compile / cache load) {r['first_step_s']:.1f} s")
    if mem is not None:
        ok = mem["peak_rss_mib"] < MEMORY_LIMIT_MIB
        verdicts.append(ok)
        how = ("VmHWM after a reset through /proc/self/clear_refs" if mem["hwm_reset"]
               else "ru_maxrss (not resettable here: includes start-up)")
        print(f"- digits training step peak memory (fresh subprocess, tinydiff only, batch 128): process peak RSS "
              f"{mem['peak_rss_mib']:.0f} MiB ({how}); that is {mem['step_increase_mib']:.0f} MiB above the "
              f"{mem['rss_before_mib']:.0f} MiB resident before the step (interpreter, numba, model, Adam + EMA state); "
              f"tracemalloc peak of NumPy allocations during a step {mem['tracemalloc_peak_mib']:.0f} MiB. "
              f"Target < 1 GiB (whole process peak): {'met' if ok else 'NOT met'}.")
    elif "digits" in names and not args.no_memory:
        print("- digits peak memory: measurement failed (see stderr)")
    tv = f", torch {torch.__version__} ({torch.get_num_threads()} threads)" if torch is not None else ", torch not importable"
    print(f"\nMachine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs, "
          f"tinydiff threads {get_num_threads()}; python {platform.python_version()}, numpy {np.__version__}, "
          f"numba {numba.__version__}{tv}"
          + ("" if others is None else f"; other processes kept {others:.2f} cores busy on average during the timing"))
    if others is not None and others > max(0.25, os.cpu_count() - args.threads):
        print(f"WARNING: the machine was busy (other processes used {others:.2f} cores on average); both libraries' "
              "thread pools stall when another process holds a core (PyTorch's OpenMP barriers especially), so "
              "absolute times and ratios are unreliable; rerun on an idle machine.")
    if verdicts:
        print(f"All required targets met: {'yes' if all(verdicts) else 'NO'}")

    if args.profile:
        for name in names:
            path = profile_config(name, max(2, min(args.steps, 5)), args.profile)
            print(f"profile of a {name} training step written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

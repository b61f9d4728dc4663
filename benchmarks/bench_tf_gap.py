"""Profile the ``c3d_bench`` input gradient per TensorFlow version and CPU kernel set.

Runs ``bench_tf_ops.py`` (the same plain ``tf.nn`` program on the zoo spec's weights) in our
env (TensorFlow 2.21) and in the ``innvestigate`` tox env (TensorFlow 2.14), each under
``TF_ENABLE_ONEDNN_OPTS=1`` and ``=0``: one fresh process per (version, kernel set) and round,
the four configurations interleaved in an order rotated per round, the load average recorded
beside every process. Reports the medians over rounds of the whole gradient (tf.function and
Session) and of every kernel's time in the traced Session call, per layer; with
``--verbose-pass``, one extra oneDNN run per version with ``ONEDNN_VERBOSE=1`` names the oneDNN
version, thread count and primitive implementations. Writes
``benchmarks/results/innvestigate_gap.md``.

    python benchmarks/bench_tf_gap.py --rounds 3 --verbose-pass

``--innvestigate-python`` (default ``.tox/innvestigate/bin/python``, or
``KVLRP_INNVESTIGATE_PYTHON``) is the TF 2.14 Python.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from kvlrp.infra.tfsetup import cpu_model  # noqa: E402  (does not import TensorFlow)

OPS_SCRIPT = ROOT / "benchmarks" / "bench_tf_ops.py"
DEFAULT_INNV = Path(os.environ.get(
    "KVLRP_INNVESTIGATE_PYTHON", str(ROOT / ".tox" / "innvestigate" / "bin" / "python")))
KERNEL_SETS = {"oneDNN": "1", "Eigen": "0"}


def run_ops(python: Path, onednn: str, args: argparse.Namespace,
            extra_env: dict | None = None) -> tuple[dict, str]:
    """One ``bench_tf_ops.py`` process: its JSON result and raw stderr."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="-1",
               TF_ENABLE_ONEDNN_OPTS=onednn, **(extra_env or {}))
    cmd = [str(python), str(OPS_SCRIPT), "--model", args.model, "--batch", str(args.batch),
           "--repeats", str(args.repeats)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=args.timeout)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"{python} (TF_ENABLE_ONEDNN_OPTS={onednn}) exit "
                           f"{proc.returncode}: {tail}")
    return json.loads(lines[-1]), proc.stdout + proc.stderr


def cpu_isa() -> str:
    """The vector extensions of this CPU that oneDNN dispatches on (``/proc/cpuinfo``)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "unknown"
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines()
                  if line.startswith("flags")), [])
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile")
    return ", ".join(f for f in wanted if f in flags) or "none of AVX2 / AVX-512 / AMX"


def load_average() -> str:
    """The 1/5/15-minute load averages."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def op_family(kernel: str) -> str:
    """A kernel name with the oneDNN prefixes and fusion stripped (``_MklNativeFusedConv3D``
    -> ``Conv3D``), so both kernel sets share a row."""
    name = kernel
    for prefix in ("_MklNative", "_Mkl"):
        if name.startswith(prefix):
            name = name[len(prefix):]
    return name[len("Fused"):] if name.startswith("Fused") else name


def collect(args: argparse.Namespace) -> dict:
    """Run every configuration ``args.rounds`` times, interleaved."""
    pythons = {"2.21": Path(sys.executable), "2.14": args.innvestigate_python}
    configs = [(v, k) for k in KERNEL_SETS for v in pythons]
    runs: dict[str, list[dict]] = {f"{v}/{k}": [] for v, k in configs}
    for r in range(args.rounds):
        shift = r % len(configs)
        for version, kernels in configs[shift:] + configs[:shift]:
            before = load_average()
            result, _ = run_ops(pythons[version], KERNEL_SETS[kernels], args)
            result["load_before"], result["load_after"] = before, load_average()
            runs[f"{version}/{kernels}"].append(result)
            print(f"round {r + 1} TF {result['tensorflow']} {kernels}: function "
                  f"{result['function_median_s']:.3f} s, session "
                  f"{result['session_median_s']:.3f} s (load {before})", file=sys.stderr,
                  flush=True)
    verbose = {}
    if args.verbose_pass:
        for version, python in pythons.items():
            _, text = run_ops(python, "1", args, {"ONEDNN_VERBOSE": "1"})
            verbose[version] = summarize_verbose(text)
    return {"runs": runs, "verbose": verbose}


def summarize_verbose(text: str) -> dict:
    """oneDNN version, threads and per primitive (kind, implementation, propagation) the
    mean time of one execution, from ``ONEDNN_VERBOSE=1`` output."""
    info, prims = [], collections.defaultdict(list)
    for line in text.splitlines():
        if not line.startswith("onednn_verbose"):
            continue
        fields = line.split(",")
        if "info" in fields[:3] and ("oneDNN" in line or "nthr" in line or "isa" in line):
            info.append(",".join(fields[fields.index("info") + 1:]))
        elif "exec" in fields:
            i = fields.index("exec")
            try:
                prims[(fields[i + 2], fields[i + 3], fields[i + 4])].append(float(fields[-1]))
            except (IndexError, ValueError):
                continue
    return {"info": info, "primitives": [
        {"kind": k[0], "impl": k[1], "prop": k[2], "calls": len(v), "total_ms": sum(v)}
        for k, v in sorted(prims.items(), key=lambda kv: -sum(kv[1]))]}


def _med(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def kernel_table(runs: dict[str, list[dict]], layers: list[str]) -> list[str]:
    """Per layer, pass and op family: the median over rounds of its traced time."""
    keys = list(runs)
    per: dict[tuple[str, str, str], dict[str, list[float]]] = collections.defaultdict(
        lambda: collections.defaultdict(list))
    names: dict[tuple[str, str, str], dict[str, set]] = collections.defaultdict(
        lambda: collections.defaultdict(set))
    for key, results in runs.items():
        for result in results:
            sums: dict[tuple[str, str, str], float] = collections.defaultdict(float)
            for row in result["kernels"]:
                family = op_family(row["kernel"])
                big = family.startswith(("Conv3D", "MaxPool3D", "MatMul"))
                layer = row["layer"] if big else "(all layers)"
                k = (layer, row["pass"], family if big else "elementwise and other")
                sums[k] += row["s"]
                names[k][key.split("/")[1]].add(row["kernel"])
            for k, v in sums.items():
                per[k][key].append(v)
    order = {name: i for i, name in enumerate(layers + ["other", "(all layers)"])}
    lines = ["| layer | pass | op | " + " | ".join(f"TF {k.replace('/', ' ')} s" for k in keys)
             + " | oneDNN kernel | Eigen kernel |", "|---|---|---|" + "---|" * (len(keys) + 2)]
    for k in sorted(per, key=lambda k: (order.get(k[0], 99), k[1] != "forward", k[2])):
        meds = [_med(per[k].get(key, [])) for key in keys]
        if max((m or 0.0) for m in meds) < 0.002:
            continue
        lines.append(f"| {k[0]} | {k[1]} | {k[2]} | " + " | ".join(_fmt(m) for m in meds)
                     + f" | {', '.join(sorted(names[k]['oneDNN'])) or '-'} | "
                       f"{', '.join(sorted(names[k]['Eigen'])) or '-'} |")
    return lines


def totals_table(runs: dict[str, list[dict]]) -> list[str]:
    """The whole gradient per configuration, with the achieved GFLOP/s."""
    lines = ["| TF | kernels | tf.function s | Session s | traced kernels sum s | "
             "GFLOP/s (tf.function) | rounds | load average before each run |",
             "|---|---|---|---|---|---|---|---|"]
    for key, results in runs.items():
        version, kernels = key.split("/")
        fn = _med([r["function_median_s"] for r in results])
        ss = _med([r["session_median_s"] for r in results])
        ks = _med([sum(row["s"] for row in r["kernels"]) for r in results])
        gflop = 2 * results[0]["gflop_forward"]  # forward + input VJP (same multiply-adds)
        lines.append(f"| {results[0]['tensorflow']} | {kernels} | {_fmt(fn)} | {_fmt(ss)} | "
                     f"{_fmt(ks)} | {gflop / fn:.0f} | {len(results)} | "
                     + "; ".join(r["load_before"] for r in results) + " |")
    return lines


def verbose_lines(verbose: dict) -> list[str]:
    """The oneDNN verbose summary per TensorFlow version."""
    out = []
    for version, summary in verbose.items():
        out.append(f"- TF {version}: " + "; ".join(summary["info"]))
        for p in summary["primitives"][:8]:
            out.append(f"  - {p['kind']} {p['prop']}: `{p['impl']}`, {p['calls']} calls, "
                       f"{p['total_ms'] / p['calls']:.1f} ms per call")
    return out


def report(data: dict, args: argparse.Namespace) -> str:
    """The markdown results file."""
    runs = data["runs"]
    first = next(iter(runs.values()))[0]
    import tensorflow as tf  # only for the header (this process: our env)

    sys.path.insert(0, str(ROOT / "tests" / "helpers"))
    from innvestigate_zoo import spec as zoo_spec

    layers = [lay.name for lay in zoo_spec.get_spec(args.model).layers]
    others = sorted({r["tensorflow"] for v in runs.values() for r in v} - {tf.__version__})
    lines = [
        f"# {args.model} input gradient per TensorFlow version and CPU kernel set", "",
        f"- date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- Machine: {cpu_model()}, {os.cpu_count()} cores ({platform.machine()}, "
        f"{platform.system()} {platform.release()}; vector ISA: {cpu_isa()}); TensorFlow "
        f"{tf.__version__} (our env, `tensorflow` wheel) and {', '.join(others)} "
        f"(`tensorflow-cpu` wheel, tox env `innvestigate`); TF CPU kernels: both "
        f"(TF_ENABLE_ONEDNN_OPTS=1 / 0, one process each). The machine was shared with other "
        f"jobs (load averages below): compare within a round, not absolute times.",
        f"- program: `benchmarks/bench_tf_ops.py`, the same plain `tf.nn` network (Conv3D + "
        f"bias + ReLU, MaxPool3D, MatMul) on the zoo spec's weights, input gradient of the top "
        f"logit, batch {first['batch']}, {first['gflop_forward']:.1f} GFLOP forward; "
        f"intra/inter-op threads: TensorFlow's default ({first['intra']}/{first['inter']} = "
        f"all cores)",
        f"- {args.rounds} rounds, the 4 configurations interleaved (order rotated per round); "
        f"per process {args.repeats} timed calls each way after one warm-up; medians",
        "", "## Whole gradient", "", *totals_table(runs), "",
        "## Kernels in the traced Session call (median over rounds)", "",
        *kernel_table(runs, layers), ""]
    if data["verbose"]:
        lines += ["## oneDNN (ONEDNN_VERBOSE=1, one extra run per version)", "",
                  *verbose_lines(data["verbose"]), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="c3d_bench")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per process")
    parser.add_argument("--verbose-pass", action="store_true")
    parser.add_argument("--innvestigate-python", type=Path, default=DEFAULT_INNV)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "innvestigate_gap.md")
    parser.add_argument("--raw", type=Path, help="also write the raw JSON here")
    parser.add_argument("--from-raw", type=Path, help="re-render a --raw file, run nothing")
    args = parser.parse_args(argv)
    if not args.innvestigate_python.exists():
        parser.error(f"--innvestigate-python {args.innvestigate_python} not found (create it "
                     f"with `python3 -m tox -e innvestigate --notest`)")
    if args.rounds < 1 or args.repeats < 1:
        parser.error("--rounds and --repeats must be >= 1")
    if args.from_raw:
        data = json.loads(args.from_raw.read_text(encoding="utf-8"))
    else:
        data = collect(args)
    if args.raw and not args.from_raw:
        args.raw.write_text(json.dumps(data, indent=1), encoding="utf-8")
    text = report(data, args)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n", encoding="utf-8")
    print(f"written: {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Time Zennit's z+ (PyTorch CPU) on a C3D zoo model with the same seeded weights and inputs
as ``bench_analyzers.py`` (run by it with a Python that has ``torch`` and ``zennit``).

    .tox/zennit/bin/python benchmarks/bench_zennit.py --model c3d_bench --batch 4

(``tox -e zennit`` builds that Python: torch 2.13.0, zennit 1.0.0.)

``--weights`` / ``--inputs`` take the npz / npy another benchmark saved (the same weights and
clips as ours); the gradient and z+ run interleaved round by round (``_interleave``), z+'s
``median_paired_ratio`` is over its own gradient. Prints one JSON line: median times of the
input gradient and of z+ (every Conv3d / Linear, max pooling by its gradient,
winner-take-all), peak RSS and the relevance / logit ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "helpers"))

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from _interleave import round_orders, summarize  # noqa: E402  (pure Python)
from innvestigate_zoo import spec as zoo_spec  # noqa: E402  (numpy only)
from zennit_loading import import_zennit  # noqa: E402  (importlib only)


def build_torch(model_spec, weights):
    """The zoo's C3D layout (Conv3D same, MaxPooling3D, Flatten, Dense) in PyTorch."""
    import torch
    from torch import nn

    class ChannelsLastFlatten(nn.Module):  # Keras flattens (t, h, w, c)
        def forward(self, x):
            return torch.flatten(x.permute(0, 2, 3, 4, 1), 1)

    mods, channels = [], model_spec.input_shape[-1]
    for layer in model_spec.layers:
        cfg = layer.config
        if layer.kind == "Conv3D":
            k = tuple(cfg["kernel_size"])
            conv = nn.Conv3d(channels, cfg["filters"], k, padding=tuple(s // 2 for s in k),
                             bias=cfg["use_bias"])
            w = weights[layer.name]
            conv.weight.data = torch.from_numpy(w[0].transpose(4, 3, 0, 1, 2).copy())
            if cfg["use_bias"]:
                conv.bias.data = torch.from_numpy(w[1].copy())
            mods.append(conv)
            channels = cfg["filters"]
        elif layer.kind == "MaxPooling3D":
            size = tuple(cfg["pool_size"])
            mods.append(nn.MaxPool3d(size, size, ceil_mode=cfg["padding"] == "same"))
        elif layer.kind == "Flatten":
            mods.append(ChannelsLastFlatten())
        elif layer.kind == "Dense":
            w = weights[layer.name]
            lin = nn.Linear(w[0].shape[0], w[0].shape[1], bias=cfg["use_bias"])
            lin.weight.data = torch.from_numpy(w[0].T.copy())
            if cfg["use_bias"]:
                lin.bias.data = torch.from_numpy(w[1].copy())
            mods.append(lin)
        else:
            raise ValueError(f"bench_zennit handles C3D zoo models; layer {layer.name} is "
                             f"{layer.kind}")
        if cfg.get("activation") == "relu":
            mods.append(nn.ReLU())
    return nn.Sequential(*mods).eval()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="c3d_bench")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--weights", help="npz with weights/<layer>/<i> keys (default: the "
                        "spec's seeded weights)")
    parser.add_argument("--inputs", help=".npy batch [batch, *input_shape] (default: seeded)")
    args = parser.parse_args(argv)
    import torch

    _, note = import_zennit()
    from importlib.metadata import version

    from zennit.attribution import Gradient
    from zennit.composites import LayerMapComposite
    from zennit.rules import Pass, ZPlus

    torch.set_num_threads(os.cpu_count() or 1)
    model_spec = zoo_spec.get_spec(args.model)
    if args.weights:
        with np.load(args.weights) as data:
            weights = zoo_spec.unflatten_weights({k: data[k] for k in data.files})
    else:
        weights = zoo_spec.make_weights(model_spec)
    model = build_torch(model_spec, weights)
    inputs = (np.load(args.inputs).astype(np.float32) if args.inputs
              else zoo_spec.make_inputs(model_spec, n=args.batch))
    x = torch.from_numpy(inputs.transpose(0, 4, 1, 2, 3).copy())
    with torch.no_grad():
        logits = model(x)
    onehot = torch.nn.functional.one_hot(logits.argmax(1), logits.shape[1]).float()
    composite = LayerMapComposite([(torch.nn.ReLU, Pass()), (torch.nn.Conv3d, ZPlus()),
                                   (torch.nn.Linear, ZPlus())])

    def gradient():
        xg = x.clone().requires_grad_(True)
        (model(xg) * onehot).sum().backward()
        return xg.grad

    def zplus():
        with Gradient(model=model, composite=composite) as attributor:
            _, relevance = attributor(x, onehot * logits.clamp(min=0))
        return relevance

    out = {"library": "zennit", "zennit": version("zennit"),
           "torch": torch.__version__, "threads": torch.get_num_threads(),
           "model": args.model, "batch": args.batch, "analyzers": {}}
    if note:
        out["note"] = note
    calls = {"gradient": gradient, "z_plus": zplus}
    results = {name: fn() for name, fn in calls.items()}
    for _ in range(args.warmup):
        for fn in calls.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for order in round_orders(list(calls), args.repeats):  # interleaved, as ours
        for name in order:
            t0 = time.perf_counter()
            calls[name]()
            times[name].append(time.perf_counter() - t0)
    for name in calls:
        entry = summarize(times[name], times["gradient"] if name != "gradient" else None)
        if name == "z_plus":
            top = logits.max(1).values.clamp(min=0)
            entry["relevance_over_logit"] = (
                results[name].sum(dim=(1, 2, 3, 4)) / top).tolist()
        out["analyzers"][name] = entry
    out["logits_top"] = logits.max(1).values.tolist()
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

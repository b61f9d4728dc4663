"""Write, or check, iNNvestigate 2.1.2's relevance for every reference model of the zoo.

Runs only in the ``innvestigate`` tox environment (TensorFlow 2.14, tf.keras 2, iNNvestigate
2.1.2, numpy < 2)::

    # (re)write references/<model>.npz (files within rtol are kept)
    python tests/helpers/innvestigate_zoo/generate.py
    # regenerate in memory, compare, exit 1 with a summary if anything differs
    python tests/helpers/innvestigate_zoo/generate.py --check

Each ``references/<model>.npz`` holds

- ``weights/<layer>/<i>``: the layer weights (from ``spec.make_weights``),
- ``x``: the inputs ``[n, *input_shape]``; ``logits``: the model's pre-softmax outputs,
- ``selection/<sel>``: the explained output index per sample (``max``: the top logit;
  ``min``: the lowest logit, stored for the plain models and ``spec.COMPAT_MODELS`` only),
- ``relevance/<analyzer>/<sel>``: iNNvestigate's analysis (``neuron_selection_mode="index"``)
  for ``spec.ANALYZERS``, and for ``spec.EXTENDED_ANALYZERS`` on ``spec.EXTENDED_MODELS``,
- ``mode/<mode>/<analyzer>``: the analysis with ``neuron_selection_mode`` ``"max_activation"``
  or ``"all"`` (``spec.mode_analyzers(model)``: a selection on ``spec.MODE_MODELS``, every
  deterministic name on ``spec.COMPAT_MODELS``),
- ``error/<analyzer>/<sel>`` (``error/mode/<mode>/<analyzer>``): ``"<ExceptionType>:
  <message>"`` where the analyzer raised,

``smoothgrad`` and ``random`` draw their noise from ``spec.make_noise`` (iNNvestigate's
``AddGaussianNoise`` layer and ``add_gaussian_noise`` are patched here), so their output is
reproducible and can be compared with ours given the same noise.
- ``meta/<name>``: library versions (informative, not compared).

``references/pool_ties.npz`` (not a model) holds TensorFlow's own max-pooling gradients at
tied maxima, ``spec.POOL_TIE_CASES`` (1D/2D/3D, global), with their inputs and output
gradients: the tie convention iNNvestigate inherits, which ``compat="innvestigate"``
reproduces.

Numbers are compared with ``max|new - stored| <= rtol * max|stored|`` per array
(``rtol`` 3e-4: float32 round-off differs between CPUs);
weights, inputs, selections, pooling inputs and error texts must match exactly.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REFERENCE_DIR = HERE / "references"
#: float32 round-off differs between CPUs (AVX2 vs AVX-512 kernels): regenerated on an AVX2-only
#: AMD EPYC the files differ by up to 1.6e-4 of their largest value (lrp.z_plus_fast on
#: smooth_act; 7.2e-5 on residual_add). A real change of a rule moves relevance by far more.
RTOL = 3e-4
sys.path.insert(0, str(HERE.parent))
from innvestigate_zoo import build_keras2, spec  # noqa: E402

#: Models for which the lowest logit is explained too (iNNvestigate's deep_taylor zeroes it).
MIN_SELECTION_MODELS = ("plain_bias", "plain_nobias") + spec.COMPAT_MODELS


@functools.cache
def _setup_tensorflow():
    """Import TensorFlow deterministically, single-threaded, in graph mode."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.compat.v1.disable_eager_execution()
    return tf


def reference_arrays(name: str) -> dict[str, np.ndarray]:
    """Everything stored for zoo model ``name``, computed with iNNvestigate."""
    tf = _setup_tensorflow()
    import innvestigate

    tf.keras.backend.clear_session()
    model_spec = spec.get_spec(name)
    weights = spec.make_weights(model_spec)
    x = spec.make_inputs(model_spec)
    ends_in_softmax = model_spec.layers[-1].config.get("activation") == "softmax"

    def explained():
        """The model, rebuilt in a fresh graph for each analyzer.

        Reusing one model object is slower with every analyzer built on it, and changes
        results: on dense_probe, the ``_flat`` presets built after 15 other analyzers on the
        same model gave exactly the non-flat presets' numbers (presumably its input-layer
        check sees the other analyzers' nodes of the first layer).
        """
        tf.keras.backend.clear_session()
        model = build_keras2.build(model_spec, weights)
        return innvestigate.model_wo_softmax(model) if ends_in_softmax else model

    logits = np.asarray(explained().predict_on_batch(x), dtype=np.float32)

    arrays: dict[str, np.ndarray] = dict(spec.flatten_weights(weights))
    arrays["x"] = x
    arrays["logits"] = logits
    selections = {"max": np.argmax(logits, axis=1).astype(np.int64)}
    if name in MIN_SELECTION_MODELS:
        selections["min"] = np.argmin(logits, axis=1).astype(np.int64)
    _fix_noise(tf, spec.make_noise(model_spec))
    names = spec.ANALYZERS + (spec.EXTENDED_ANALYZERS if name in spec.EXTENDED_MODELS else ())
    for sel, index in selections.items():
        arrays[f"selection/{sel}"] = index
        for analyzer_name in names:
            _run(innvestigate, arrays, name, f"{analyzer_name}/{sel}", analyzer_name, explained,
                 x, "index", index)
    for mode in spec.MODES:
        for analyzer_name in spec.mode_analyzers(name):
            _run(innvestigate, arrays, name, f"mode/{mode}/{analyzer_name}", analyzer_name,
                 explained, x, mode, None)
    arrays["meta/tensorflow"] = np.array(tf.__version__)
    arrays["meta/innvestigate"] = np.array(_innvestigate_version())
    arrays["meta/numpy"] = np.array(np.__version__)
    return arrays


#: The reference file that holds TensorFlow's max-pooling gradients at tied maxima (not a
#: zoo model): ``input/<case>``, ``output_gradient/<case>``, ``gradient/<case>``.
POOL_TIES = "pool_ties"


def pool_tie_arrays() -> dict[str, np.ndarray]:
    """TensorFlow's gradient of every ``spec.POOL_TIE_CASES`` layer at inputs full of tied
    maxima, for an output gradient of distinct integer weights (so where each window's
    gradient went can be read off): the convention iNNvestigate inherits."""
    tf = _setup_tensorflow()
    arrays: dict[str, np.ndarray] = {}
    with tf.compat.v1.Session(graph=tf.Graph()) as session:
        for case, (kind, config, _) in spec.POOL_TIE_CASES.items():
            x, weights = spec.pool_tie_inputs(case)
            layer = getattr(tf.keras.layers, kind)(**config)
            x_in = tf.constant(x)
            y = layer(x_in)
            n = int(np.prod(y.shape))
            g = weights[:n].reshape(y.shape)
            (grad,) = tf.gradients(y, [x_in], grad_ys=[tf.constant(g)])
            arrays[f"input/{case}"] = x
            arrays[f"output_gradient/{case}"] = g
            arrays[f"gradient/{case}"] = np.asarray(session.run(grad), np.float32)
    arrays["meta/tensorflow"] = np.array(tf.__version__)
    return arrays


def _run(innvestigate, arrays, name, key, analyzer_name, model, x, mode, index) -> None:
    """Store iNNvestigate's analysis of ``model()`` (zoo model ``name``) under
    ``relevance/<key>`` (``mode/...`` keys as they are), or its error under ``error/<key>``."""
    kwargs = spec.innvestigate_kwargs(name, analyzer_name)
    target = key if key.startswith("mode/") else f"relevance/{key}"
    try:
        analyzer = innvestigate.create_analyzer(analyzer_name, model(),
                                                neuron_selection_mode=mode, **kwargs)
        extra = {} if index is None else {"neuron_selection": index}
        arrays[target] = np.asarray(analyzer.analyze(x, **extra), np.float32)
    except Exception as error:  # noqa: BLE001 - the failure itself is the reference
        text = re.sub(r" object at 0x[0-9a-fA-F]+", " object", f"{type(error).__name__}: {error}")
        arrays[f"error/{key}"] = np.array(text)  # (without memory addresses: reproducible)


def _fix_noise(tf, noise: np.ndarray) -> None:
    """Make iNNvestigate's Gaussian noise the fixed ``noise`` ``[batch, n, *input]``.

    ``smoothgrad`` adds ``AddGaussianNoise()`` (built with its default ``stddev=1``: its
    ``noise_scale`` argument is stored but never used) to the input repeated to
    ``[batch, n, ...]``; ``random`` calls ``add_gaussian_noise(X, stddev=stddev)``.
    """
    import innvestigate.backend as ibackend
    import innvestigate.layers as ilayers

    def layer_call(self, inputs, *args, **kwargs):
        table = tf.constant(noise[:, : inputs.shape[1]])
        return inputs + self.mean + self.stddev * table

    def add_gaussian_noise(X, mean=0.0, stddev=1.0):
        return X + mean + stddev * tf.constant(noise[:, 0])

    ilayers.AddGaussianNoise.call = layer_call
    ibackend.add_gaussian_noise = add_gaussian_noise


def _innvestigate_version() -> str:
    from importlib.metadata import version

    return version("innvestigate")


def compare(stored: dict[str, np.ndarray], new: dict[str, np.ndarray], rtol: float = RTOL):
    """Differences between a stored and a regenerated reference, as readable lines."""
    problems = []
    keys_stored = {k for k in stored if not k.startswith("meta/")}
    keys_new = {k for k in new if not k.startswith("meta/")}
    for key in sorted(keys_stored - keys_new):
        problems.append(f"{key}: stored but no longer produced")
    for key in sorted(keys_new - keys_stored):
        problems.append(f"{key}: produced but not stored")
    for key in sorted(keys_stored & keys_new):
        a, b = np.asarray(stored[key]), np.asarray(new[key])
        if a.dtype.kind in "US" or b.dtype.kind in "US":
            if str(a) != str(b):
                problems.append(f"{key}: text differs: stored {str(a)!r}, now {str(b)!r}")
            continue
        if a.shape != b.shape:
            problems.append(f"{key}: shape {a.shape} stored, {b.shape} now")
            continue
        exact = key.startswith(("weights/", "selection/", "input/")) or key == "x"
        if exact:
            if not np.array_equal(a, b):
                problems.append(f"{key}: differs (must match exactly)")
            continue
        if not (np.all(np.isfinite(a) == np.isfinite(b))):
            problems.append(f"{key}: non-finite values differ")
            continue
        scale = float(np.max(np.abs(a[np.isfinite(a)]), initial=0.0))
        diff = float(np.max(np.abs(np.nan_to_num(a) - np.nan_to_num(b)), initial=0.0))
        if diff > rtol * scale or (scale == 0.0 and diff > 0.0):
            problems.append(
                f"{key}: max |diff| {diff:.3e} > {rtol:g} x max |stored| {scale:.3e} "
                f"(relative {diff / scale if scale else float('inf'):.3e})"
            )
    return problems


def load(path: Path) -> dict[str, np.ndarray]:
    """All arrays of a stored reference file."""
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="compare with the committed files instead of writing them")
    files = list(spec.REFERENCE_MODELS) + [POOL_TIES]
    parser.add_argument("--models", nargs="*", default=files,
                        help=f"zoo models, or {POOL_TIES!r} (default: every reference file)")
    parser.add_argument("--rtol", type=float, default=RTOL)
    args = parser.parse_args(argv)
    unknown = sorted(set(args.models) - set(files))
    if unknown:
        parser.error(f"unknown models {unknown}; choose from {files}")

    failures = {}
    for name in args.models:
        path = REFERENCE_DIR / f"{name}.npz"
        new = pool_tie_arrays() if name == POOL_TIES else reference_arrays(name)
        n_errors = sum(k.startswith("error/") for k in new)
        if args.check:
            if not path.exists():
                failures[name] = [f"{path} is missing (run generate.py without --check)"]
            else:
                problems = compare(load(path), new, args.rtol)
                if problems:
                    failures[name] = problems
            status = "DIFFERS" if name in failures else "ok"
            print(f"{name:18s} {status:8s} ({n_errors} analyzer errors recorded)", flush=True)
        elif path.exists() and not compare(load(path), new, args.rtol):
            print(f"{name:18s} unchanged, {path} kept ({n_errors} analyzer errors recorded)",
                  flush=True)
        else:  # (npz bytes carry a time stamp: rewrite only what changed)
            REFERENCE_DIR.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(path, **new)
            print(f"{name:18s} written to {path} ({n_errors} analyzer errors recorded)",
                  flush=True)
    if failures:
        print(f"\n{len(failures)} of {len(args.models)} reference files differ "
              f"(rtol {args.rtol:g}):")
        for name, problems in failures.items():
            print(f"  {name}:")
            for line in problems:
                print(f"    {line}")
        return 1
    if args.check:
        print(f"all {len(args.models)} reference files match (rtol {args.rtol:g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

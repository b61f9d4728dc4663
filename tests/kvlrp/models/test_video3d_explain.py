"""The R3D, R(2+1)D, I3D and X3D ``_small`` builders, explained and trained.

* Explained: every layer of every builder is accepted (no refusal), and on the bias-free
  variants the conserving rules give ``R.sum()`` equal to the explained logit (deep Taylor:
  ``max(0, logit)``) within 1e-4 relative plus float32 round-off of ``sum|R|``
  (tests/helpers/conservation.py), on inputs whose logit is far from zero, through residual Add,
  (2+1)D factorised convs,
  Inception Concatenate, channelwise (grouped) convs, squeeze-excitation gates, swish and
  folded BatchNormalization. BatchNorm gets random scales and variances (mean 0, no
  offset: no additive term), so the folding is not the identity.
* Trained: a few real training steps of each builder through the tf.data pipeline on the
  synthetic shards, resumed once; weights move and every score is finite. (A falling
  training-clip loss after 25 steps at lr 1e-2 held for r3d_small only: BatchNorm statistics
  of 4-clip batches make the short-run evaluation loss noisy, so it is not asserted.)
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from conservation import ascent_inputs, assert_conserved

import analyzers
from kvlrp.models import build_model

SMALL = ["r3d_small", "r2plus1d_small", "i3d_small", "x3d_small"]
#: Narrow variants of the builders for 8x16x16 clips (a few thousand parameters).
KWARGS = {
    "r3d_small": {"widths": (4, 8, 8, 8)},
    "r2plus1d_small": {"widths": (4, 8, 8, 8)},
    "i3d_small": {"width": 0.0625},
    "x3d_small": {"width_factor": 0.5, "depth_factor": 0.5, "head_dim": 16},
}
SHAPE = (8, 16, 16, 3)

#: (analyzer, kwargs, input range, explains max(0, logit), relative tolerance).
#: The relative tolerance is what the rule may lose; float32 round-off is added relative to
#: sum|R| (tests/helpers/conservation.py). On random inputs an untrained net's logit can be 0.002
#: against sum|R| = 163 under alpha-beta (r2plus1d_small), where round-off alone moves the
#: total by 1 % of the logit and differs between kernel sets; so the inputs are the corners
#: the selected logit's gradient points to (sum|R| / |logit| <= 50 measured, 100 asserted).
#: lrp.epsilon's stabiliser (1e-7) absorbs a little relevance at near-zero neurons: measured
#: up to 2.6e-5 of the logit (i3d_small).
CONSERVING = [
    ("lrp.z", {}, (-1.0, 1.0), False, 1e-4),
    ("lrp.alpha_2_beta_1", {}, (-1.0, 1.0), False, 1e-4),
    ("lrp.epsilon", {}, (-1.0, 1.0), False, 1e-4),
]
#: sum|R| / |logit| allowed on the ascent inputs (the check stays sharp to ~rtol).
MAX_MASS_RATIO = 100.0
#: z+ based rules; they conserve where every neuron that receives relevance has an
#: activating (positive) contribution. That holds in I3D (ReLU, pooling, Concatenate) and
#: behind residual sums, which the z+ analyzers split by the inputs' positive parts (a
#: branch whose output is negative gets none); not behind swish (signed outputs, x3d: units
#: of the channelwise convolutions with a negative output and no activating contribution
#: receive relevance through swish and drop it, 0.4-0.6 % of the logit).
Z_PLUS = [
    ("deep_taylor", {}, (0.0, 1.0), True, 1e-4),
    ("deep_taylor.bounded", {"low": -1.0, "high": 1.0}, (-1.0, 1.0), True, 1e-4),
    ("lrp.z_plus", {}, (-1.0, 1.0), False, 1e-4),
]
#: (analyzer, kwargs, input low) of the z+ leak trace on x3d_small.
Z_PLUS_CASES = [(method, kwargs, lo) for method, kwargs, (lo, _), _, _ in Z_PLUS
                if method != "deep_taylor.bounded"]  # its input rule is z^B, the rest z+


def _randomise_batch_norm(model: keras.Model, rng: np.random.Generator) -> int:
    n = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.moving_variance.shape[0]
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, c).astype("float32"))
            if layer.scale:
                layer.gamma.assign(rng.uniform(0.5, 1.5, c).astype("float32"))
            n += 1
    return n


def _mirror_head(model: keras.Model) -> None:
    """Class 1 := -class 0 at the (bias-free) classifier, so some logit is positive."""
    head = model.get_layer("predictions")
    kernel = head.kernel.numpy()
    kernel[..., 1] = -kernel[..., 0]
    head.kernel.assign(kernel)


@pytest.fixture(scope="module")
def bias_free_models():
    rng = np.random.default_rng(0)
    models = {}
    for name in SMALL:
        keras.utils.set_random_seed(1)
        model = build_model(name, 3, frames=SHAPE[0], size=SHAPE[1], bias=False, **KWARGS[name])
        assert _randomise_batch_norm(model, rng) > 0
        _mirror_head(model)
        models[name] = model
    return models


def _check_conserved(model, cases):
    rng = np.random.default_rng(2)
    graph = analyzers.build_graph(model)
    for method, kwargs, (lo, hi), relu_output, rtol in cases:
        x = rng.uniform(lo, hi, (2,) + SHAPE).astype("float32")
        selection = np.argmax(graph.forward(x).numpy(), axis=1)
        x = ascent_inputs(graph.forward, x, selection, lo, hi)
        logits = graph.forward(x).numpy()
        target = logits[np.arange(2), selection]
        if relu_output:
            target = np.maximum(target, 0.0)
            assert np.all(target > 0), (method, logits)  # a non-trivial check
        analyzer = analyzers.create_analyzer(method, model, **kwargs)
        relevance = analyzer.analyze(x, neuron_selection=selection)
        assert relevance.shape == x.shape and np.isfinite(relevance).all()
        assert_conserved(relevance, target, rtol=rtol, max_mass_ratio=MAX_MASS_RATIO,
                         err_msg=f"{method} on {model.name}")


@pytest.mark.parametrize("name", SMALL)
def test_small_builder_conserves_relevance(bias_free_models, name):
    _check_conserved(bias_free_models[name], CONSERVING)


@pytest.mark.parametrize("name", ["i3d_small", "r3d_small", "r2plus1d_small"])
def test_relu_builders_conserve_relevance_under_deep_taylor_and_z_plus(bias_free_models, name):
    _check_conserved(bias_free_models[name], Z_PLUS)


@pytest.mark.parametrize("name", ["x3d_small"])
def test_z_plus_leak_behind_swish_is_the_degenerate_neurons(bias_free_models, name):
    """z+ / deep Taylor do not conserve exactly behind swish (signed outputs; measured on the
    random bias-free x3d_small: totals 0.995-0.996 of the logit; where it goes:
    :func:`test_z_plus_leak_on_x3d_is_at_dead_channelwise_units`). (Before residual sums were
    split by positive parts under z+, r3d_small lost 0.4-5 % and r2plus1d_small up to 36 %.)
    The cause is only the neurons without an activating contribution: alpha-beta with
    beta = 1e-6 (z+ everywhere else, to 1e-6) sends their relevance through the inhibitory
    contributions and conserves to 1e-4; and z+ is still finite, accepted and non-zero."""
    model = bias_free_models[name]
    near_z_plus = analyzers.AlphaBetaRule(1.0 + 1e-6, 1e-6, bias=False)
    _check_conserved(model, [("lrp", {"rule": near_z_plus}, (-1.0, 1.0), False, 1e-4)])
    x = np.random.default_rng(5).uniform(-1, 1, (2,) + SHAPE).astype("float32")
    relevance = analyzers.create_analyzer("lrp.z_plus", model).analyze(x)
    assert np.isfinite(relevance).all() and np.abs(relevance).sum() > 0


def _relevance_flow(analyzer, x: np.ndarray, selection: np.ndarray) -> list[dict]:
    """The analyzer's backward walk (``RelevanceAnalyzer._explain``) step by step: for every
    step the relevance it receives and passes on (summed over the batch) and, at a z+ kernel
    step, the relevance held by units whose activating contributions are all zero
    (``z+_j = sum_i x+_i w+_ij + x-_i w-_ij = 0``: z+ has nothing to pass it to)."""
    graph = analyzer.graph
    values = graph.forward_all(tf.constant(x))
    out = values[graph.output_id]
    top = tf.nn.relu(out) if analyzer.relu_output else out
    relevance = {graph.output_id: top * tf.one_hot(selection, out.shape[-1])}
    flow = []
    for k in range(len(graph.steps) - 1, -1, -1):
        step, rule = graph.steps[k], analyzer.rules[k]
        r = relevance.pop(step.output, None)
        if r is None:
            continue
        xs = [values[i] for i in step.inputs]
        op = step.op.at(xs)
        r_in = rule(op, xs, r, nonnegative=step.input_nonnegative)
        row = {"name": step.op.name, "out": float(tf.reduce_sum(r)),
               "in": sum(float(tf.reduce_sum(t)) for t in r_in), "dead": 0.0,
               "dead_negative": 0.0, "nonnegative": step.input_nonnegative}
        if isinstance(rule, analyzers.ZPlusRule) and op.has_weights:
            kernel = op.kernel
            z_act = (op.linear([tf.nn.relu(xs[0])], tf.nn.relu(kernel), None)
                     + op.linear([tf.minimum(xs[0], 0.0)], tf.minimum(kernel, 0.0), None))
            dead = tf.equal(z_act, 0.0)
            row["dead"] = float(tf.reduce_sum(tf.where(dead, r, 0.0)))
            negative = tf.logical_and(dead, values[step.output] < 0)
            row["dead_negative"] = float(tf.reduce_sum(tf.where(negative, r, 0.0)))
        flow.append(row)
        for i, ri in zip(step.inputs, r_in):
            relevance[i] = relevance[i] + ri if i in relevance else ri
    return flow


@pytest.mark.parametrize("method, kwargs, low", Z_PLUS_CASES)
def test_z_plus_leak_on_x3d_is_at_dead_channelwise_units(bias_free_models, method, kwargs, low):
    """Where z+ / deep Taylor lose relevance on the bias-free x3d_small, layer by layer.

    Every step conserves to 1e-6 of the logit (the gates, global average pooling, the
    residual sums, swish, the BN-folded convolutions) except the channelwise 3x3x3
    convolutions (``*_conv_b``), and there the loss is exactly the relevance held by units
    with no activating contribution: their inputs are ReLU outputs (>= 0) and every input
    with a positive weight is 0, so their output is negative, yet they receive relevance
    through swish and the next 1x1x1 convolution (a negative activation times a negative
    weight is a positive contribution) and z+ has nothing to pass it to. Such units are
    common where the frames are small: stages 3 and 4 are 1x1 pixels for 16x16 clips, so 3
    of the 27 taps see data. Measured (4 clips each for deep_taylor and lrp.z_plus, one at a
    time): 0.38-0.60 % of the logit lost, 84-99 % of it in stages 3-4, where a non-strided
    block's channelwise convolution loses 21-27 % of the relevance it receives (stage 1: 1 %;
    each residual branch carries 0.4-1.4 % of the relevance in this random net, the
    shortcuts the rest). This is z+ itself (Zennit 1.0's ZPlus loses the same,
    tests/analyzers/zennit/test_crosscheck.py): the z+ fraction is 0/0 at such a unit, and
    iNNvestigate and Zennit drop it; a rule that passed it on (by the inhibitory contributions, as
    alpha-beta with beta > 0 does) would no longer be their z+."""
    model = bias_free_models["x3d_small"]
    x = np.random.default_rng(2).uniform(low, 1.0, (2,) + SHAPE).astype("float32")
    analyzer = analyzers.create_analyzer(method, model, **kwargs)
    logits = analyzer.graph.forward(x).numpy()
    selection = np.argmax(logits, axis=1)
    target = np.maximum(logits[np.arange(2), selection], 0.0).sum()
    flow = _relevance_flow(analyzer, x, selection)
    total = analyzer.analyze(x, neuron_selection=selection).sum()
    np.testing.assert_allclose(flow[-1]["in"], total, rtol=1e-5)  # the same walk
    lost = 1.0 - total / target
    assert 1e-3 < lost < 1e-2, lost  # measured 0.0036-0.0051
    leaking = [row for row in flow if row["out"] - row["in"] > 1e-6 * target]
    assert leaking and all("_conv_b" in row["name"] and row["nonnegative"]
                           for row in leaking), [row["name"] for row in leaking]
    for row in flow:
        if row in leaking:
            np.testing.assert_allclose(row["out"] - row["in"], row["dead"], rtol=1e-3,
                                       err_msg=row["name"])
            np.testing.assert_allclose(row["dead_negative"], row["dead"], rtol=1e-6)
        else:
            assert abs(row["out"] - row["in"]) <= 1e-6 * target, row
    late = sum(row["out"] - row["in"] for row in leaking if row["name"].startswith(("s3", "s4")))
    assert late > 0.5 * lost * target, (late, lost * target)


@pytest.mark.parametrize("name", SMALL)
def test_small_builder_with_biases_is_explained_layer_by_layer(name):
    """The default builders (biases, BN offsets) are accepted whole: every step has a rule,
    weight layers get the composite's rule (never the gradient), BN is folded, X3D's gates
    get the gate rule and its swish the identity rule."""
    keras.utils.set_random_seed(0)
    model = build_model(name, 4, frames=SHAPE[0], size=SHAPE[1], **KWARGS[name])
    analyzer = analyzers.create_analyzer("lrp.epsilon", model)
    rules = analyzer.layer_rules()
    kernel_layers = {layer.name for layer in model.layers
                     if isinstance(layer, (keras.layers.Conv3D, keras.layers.Dense))}
    assert kernel_layers
    by_name = {}  # a folded step is named "conv+bn"
    for step_name, rule in rules:
        for part in step_name.split("+"):
            by_name.setdefault(part.split("/")[0], rule)
    for layer in kernel_layers:
        assert by_name[layer].startswith("EpsilonRule"), (layer, by_name[layer])
    assert not any(isinstance(layer, keras.layers.BatchNormalization)
                   for layer in (step.op.layer for step in analyzer.graph.steps))
    if name == "x3d_small":
        gates = [n for n, r in rules if r == "GateRule()"]
        assert gates and all("IdentityRule" in by_name[layer.name] for layer in model.layers
                             if isinstance(layer, keras.layers.Activation)
                             and layer.get_config()["activation"] in ("swish", "silu"))
    x = np.random.default_rng(3).uniform(-1, 1, (2,) + SHAPE).astype("float32")
    relevance = analyzer.analyze(x)
    assert np.isfinite(relevance).all() and np.abs(relevance).sum() > 0


# -- a few real training steps through the tf.data pipeline ------------------------------
@pytest.mark.parametrize("name", SMALL)
def test_small_builder_trains_through_the_pipeline(name, synthetic_shards, tmp_path):
    from kvlrp.data.clips.pipeline import eval_dataset
    from kvlrp.data.clips.spec import ClipSpec
    from kvlrp.training import evaluate_clips, train

    settings = {"model": name, "clip_len": 4, "size": 16, "batch_size": 4, "seed": 0,
                "learning_rate": 1e-2, "progress": False, "restore_best": False,
                **KWARGS[name]}
    spec = ClipSpec(clip_len=4, step=1, size=16)

    def train_loss(model):
        return evaluate_clips(model, eval_dataset(synthetic_shards, spec, split="train",
                                                  n_clips=2))["loss"]

    first = train(synthetic_shards, tmp_path / "m", epochs=1, steps_per_epoch=2, **settings)
    before_weights = [w.copy() for w in first.model.get_weights()]
    result = train(synthetic_shards, tmp_path / "m", epochs=3, steps_per_epoch=3, **settings)
    assert list(result.history["epoch"]) == [1, 2, 3]  # resumed after epoch 1
    scores = ["loss", "accuracy", "val_loss", "val_video_accuracy"]
    assert np.isfinite(result.history[scores].to_numpy()).all()
    assert np.isfinite(train_loss(result.model))
    moved = [not np.allclose(a, b) for a, b in zip(before_weights, result.model.get_weights())]
    assert sum(moved) >= len(moved) // 2, f"{sum(moved)} of {len(moved)} weights changed"
    assert result.info.architecture == name

"""Known faults of iNNvestigate 2.1.2, each shown from its stored reference relevance.

Every test states the fault, checks it in iNNvestigate's stored numbers (either against a
closed-form numpy formula or by reproducing it exactly with our engine after swapping in
iNNvestigate's rule), and checks that ours does not have it (conservation, or agreement
with iNNvestigate on a mathematically equivalent model where it is right).
"""

from __future__ import annotations

import numpy as np
from innvestigate_zoo import reference, spec
from innvestigate_zoo.reference import explain

import analyzers
from analyzers.composites import (
    Composite,
    is_add,
    is_average_pooling,
    is_batch_norm,
    is_kernel_layer,
)

BN_EPSILON = spec.BN_EPSILON


def _safe_divide(a, b):
    """iNNvestigate's safe_divide: a / b, and 0 where b == 0."""
    return a / np.where(b == 0, 1, b) * (b != 0)


def _innvestigate_deep_taylor_with_gradient_at(name: str, predicate) -> np.ndarray:
    """Our engine with iNNvestigate's deep_taylor choice: z+ kernels, gradient at ``predicate``."""
    composite = Composite([
        (predicate, analyzers.GradientRule()),
        (is_kernel_layer, analyzers.ZPlusRule()),
        (is_average_pooling, analyzers.ZRule()),
        (is_add, analyzers.ZRule()),
    ])
    data = reference.load(name)
    analyzer = analyzers.create_analyzer("lrp", reference.model(name), composite=composite,
                                         relu_output=True, canonizers=[])
    return analyzer.analyze(data["x"], neuron_selection=data["selection/max"])


def test_deep_taylor_doubles_relevance_at_every_skip_connection():
    """deep_taylor maps Add to the gradient: each input gets all of the output's relevance.

    residual_add has two skips, so iNNvestigate's total is 2**2 = 4 times the logit.
    """
    theirs = reference.load("residual_add")["relevance/deep_taylor/max"]
    logits = reference.selected_logits("residual_add")
    np.testing.assert_allclose(reference.per_sample_sum(theirs), 4.0 * logits, rtol=1e-5)
    reproduced = _innvestigate_deep_taylor_with_gradient_at("residual_add", is_add)
    assert reference.relative_difference(reproduced, theirs) <= 1e-5
    ours = explain("residual_add", "deep_taylor")
    np.testing.assert_allclose(reference.per_sample_sum(ours), logits, rtol=1e-5)


def test_deep_taylor_scales_by_gamma_over_sigma_at_batchnorm():
    """deep_taylor maps BatchNormalization to the gradient, scaling by gamma / sigma per channel.

    bn_probe (BN -> Flatten -> Dense): iNNvestigate's map is exactly
    ``gamma / sqrt(var + eps) * R_dense`` with ``R_dense`` the z+ share of the Dense layer.
    """
    data = reference.load("bn_probe")
    gamma, beta, mean, var = (data[f"weights/bn/{i}"] for i in range(4))
    kernel = data["weights/logits/0"]
    scale = gamma / np.sqrt(var + BN_EPSILON)
    y = (data["x"] - mean) * scale + beta
    for i, index in enumerate(data["selection/max"]):
        w = kernel[:, index].reshape(y.shape[1:])
        z = np.maximum(y[i], 0) * np.maximum(w, 0) + np.minimum(y[i], 0) * np.minimum(w, 0)
        logit = float((y[i] * w).sum())
        expected = scale * z / z.sum() * max(logit, 0.0)
        theirs = data["relevance/deep_taylor/max"][i]
        assert reference.relative_difference(theirs, expected) <= 1e-5
        assert abs(theirs.sum() / logit - 1.0) > 0.3  # 1.63 and 1.53: not conserved

    # In a Conv3D -> BN -> ReLU network: theirs keeps 0.45 of the logit, ours all of it.
    logits = reference.selected_logits("batchnorm")
    theirs = reference.load("batchnorm")["relevance/deep_taylor/max"]
    ratio = reference.per_sample_sum(theirs) / logits
    assert np.all(np.abs(ratio - 1.0) > 0.3), ratio
    reproduced = _innvestigate_deep_taylor_with_gradient_at("batchnorm", is_batch_norm)
    assert reference.relative_difference(reproduced, theirs) <= 1e-5
    np.testing.assert_allclose(reference.per_sample_sum(explain("batchnorm", "deep_taylor")),
                               logits, rtol=1e-5)


def _bn_probe_lrp_z(variance_squared: bool, gamma_in_bias: bool) -> np.ndarray:
    """LRP-z through bn_probe with a BN surrogate ``x * k + b`` (formula variants)."""
    data = reference.load("bn_probe")
    gamma, beta, mean, var = (data[f"weights/bn/{i}"] for i in range(4))
    kernel = data["weights/logits/0"]
    x = data["x"]
    true_scale = gamma / np.sqrt(var + BN_EPSILON)
    y = (x - mean) * true_scale + beta
    sigma = np.sqrt((var**2 if variance_squared else var) + BN_EPSILON)
    k = gamma / sigma
    b = beta - mean * (k if gamma_in_bias else 1.0 / sigma)
    out = []
    for i, index in enumerate(data["selection/max"]):
        r_y = y[i] * kernel[:, index].reshape(y.shape[1:])  # z rule of a bias-free Dense
        out.append(_safe_divide(x[i] * k, x[i] * k + b) * r_y)
    return np.stack(out)


def test_lrp_batchnorm_surrogate_squares_the_variance():
    """The LRP analyzers' fused-BN surrogate divides by sqrt(var**2 + eps), not sqrt(var + eps).

    Its bias is also ``beta - mean / sqrt(var**2 + eps)``: gamma is missing there. Both show in
    lrp.z on bn_probe, which equals that formula and no other variant.
    """
    theirs = reference.load("bn_probe")["relevance/lrp.z/max"]
    assert reference.relative_difference(theirs, _bn_probe_lrp_z(True, False)) <= 1e-5
    for variant in [(False, True), (False, False), (True, True)]:
        assert reference.relative_difference(theirs, _bn_probe_lrp_z(*variant)) > 0.05
    # ours applies the z rule to the true affine map x * k + b = y: R = x * k * w.
    ours = explain("bn_probe", "lrp.z")
    assert reference.relative_difference(ours, _bn_probe_lrp_z(False, True)) <= 1e-4
    # In Conv3D -> BN -> ReLU, ours equals iNNvestigate on the hand-folded twin, theirs not.
    twin = reference.load("batchnorm_folded")
    for analyzer_name in ("lrp.z", "lrp.epsilon"):
        theirs = reference.load("batchnorm")[f"relevance/{analyzer_name}/max"]
        assert reference.relative_difference(
            theirs, twin[f"relevance/{analyzer_name}/max"]) > 0.5
        assert reference.relative_difference(
            explain("batchnorm", analyzer_name), twin[f"relevance/{analyzer_name}/max"]) <= 1e-4


def test_lrp_z_plus_loses_relevance_at_an_unfolded_batchnorm():
    """lrp.z_plus treats BN as its own diagonal layer: where the conv output is negative but
    the BN output positive, z+ has no positive contribution and drops the relevance (1-2 %).
    Ours folds BN into the conv first and conserves; unfolded, ours reproduces theirs."""
    logits = reference.selected_logits("batchnorm")
    theirs = reference.load("batchnorm")["relevance/lrp.z_plus/max"]
    ratio = reference.per_sample_sum(theirs) / logits
    assert np.all(ratio < 0.995), ratio
    np.testing.assert_allclose(reference.per_sample_sum(explain("batchnorm", "lrp.z_plus")),
                               logits, rtol=1e-5)
    data = reference.load("batchnorm")
    unfolded = analyzers.create_analyzer("lrp.z_plus", reference.model("batchnorm"),
                                         canonizers=[])
    reproduced = unfolded.analyze(data["x"], neuron_selection=data["selection/max"])
    assert reference.relative_difference(reproduced, theirs) <= 1e-5


def _dense_alpha_beta(bias_split: bool) -> np.ndarray:
    """alpha=2, beta=1 through dense_probe's single Dense layer (closed form)."""
    data = reference.load("dense_probe")
    x = data["x"].reshape(len(data["x"]), -1)
    kernel, bias = data["weights/logits/0"], data["weights/logits/1"]
    out = []
    for i, index in enumerate(data["selection/max"]):
        w, b = kernel[:, index], float(bias[index])
        logit = float(x[i] @ w + b)
        xp, xn = np.maximum(x[i], 0), np.minimum(x[i], 0)
        wp, wn = np.maximum(w, 0), np.minimum(w, 0)
        z_pos, z_neg = xp * wp + xn * wn, xp * wn + xn * wp
        b_pos, b_neg = (max(b, 0.0), min(b, 0.0)) if bias_split else (b, b)
        r = 2 * _safe_divide(z_pos, z_pos.sum() + b_pos) - _safe_divide(z_neg, z_neg.sum() + b_neg)
        out.append((r * logit).reshape(data["x"].shape[1:]))
    return np.stack(out)


def test_alpha_beta_puts_whole_bias_in_both_denominators():
    """iNNvestigate's alpha-beta adds the whole bias b to both the positive and the negative
    denominator (instead of b+ and b-), so it is compared with ours on bias-free models only."""
    theirs = reference.load("dense_probe")["relevance/lrp.alpha_2_beta_1/max"]
    assert reference.relative_difference(theirs, _dense_alpha_beta(bias_split=False)) <= 1e-5
    assert reference.relative_difference(theirs, _dense_alpha_beta(bias_split=True)) > 1e-3
    ours = explain("dense_probe", "lrp.alpha_2_beta_1")
    assert reference.relative_difference(ours, _dense_alpha_beta(bias_split=True)) <= 1e-4


def test_alpha_beta_degenerate_neurons_do_not_conserve():
    """Where a neuron has no inhibitory (z- = 0) or no activating (z+ = 0) contribution,
    iNNvestigate's alpha-beta passes alpha R or -beta R (the textbook formula with 0/0 = 0), so
    even a bias-free model does not conserve: strides_dilation keeps 1.34 and 1.18 x the
    logit, and plain_nobias' lowest logit (all contributions negative at the output) comes
    back with its sign flipped. Ours gives such a neuron's relevance to the part it has
    (conserving); its textbook variant reproduces iNNvestigate."""
    cases = [("strides_dilation", "max", lambda ratio: np.all(ratio > 1.1)),
             ("plain_nobias", "min", lambda ratio: np.allclose(ratio, -1.0, rtol=1e-5))]
    for name, selection, shows_fault in cases:
        data = reference.load(name)
        theirs = data[f"relevance/lrp.alpha_2_beta_1/{selection}"]
        logits = reference.selected_logits(name, selection)
        ratio = reference.per_sample_sum(theirs) / logits
        assert shows_fault(ratio), (name, ratio)
        ours = explain(name, "lrp.alpha_2_beta_1", selection)
        np.testing.assert_allclose(reference.per_sample_sum(ours), logits, rtol=1e-5)
        textbook = analyzers.create_analyzer(
            "lrp", reference.model(name),
            rule=analyzers.AlphaBetaRule(2.0, 1.0, conserve_degenerate=False))
        reproduced = textbook.analyze(data["x"], neuron_selection=data[f"selection/{selection}"])
        assert reference.relative_difference(reproduced, theirs) <= 1e-5


def test_deep_taylor_splits_average_pooling_evenly():
    """deep_taylor routes (global) average pooling by the gradient, an even split over the
    window; ours splits in proportion to the inputs, as iNNvestigate's own lrp.z / lrp.z_plus
    do (and those agree with ours, see test_innvestigate_crosscheck)."""
    for name in ("avgpool", "global_avgpool"):
        theirs = reference.load(name)["relevance/deep_taylor/max"]
        reproduced = _innvestigate_deep_taylor_with_gradient_at(name, is_average_pooling)
        assert reference.relative_difference(reproduced, theirs) <= 1e-5
        ours = explain(name, "deep_taylor")
        assert reference.relative_difference(ours, theirs) > 0.1
        logits = reference.selected_logits(name)
        for relevance in (ours, theirs):  # both conserve; they only distribute differently
            np.testing.assert_allclose(reference.per_sample_sum(relevance), logits, rtol=1e-5)


def test_deep_taylor_explains_relu_of_the_output():
    """deep_taylor puts a ReLU on the explained output: a negative logit gives an all-zero
    map. Ours keeps that convention (relu_output); lrp.z_plus explains negative logits."""
    data = reference.load("plain_bias")
    assert np.all(reference.selected_logits("plain_bias", "min") < 0)
    for analyzer_name in ("deep_taylor", "deep_taylor.bounded"):
        assert not np.any(data[f"relevance/{analyzer_name}/min"])
        assert not np.any(explain("plain_bias", analyzer_name, "min"))
    np.testing.assert_allclose(
        reference.per_sample_sum(data["relevance/lrp.z_plus/min"]),
        reference.selected_logits("plain_bias", "min"), rtol=1e-5)


def test_time_distributed_and_layer_norm():
    """iNNvestigate's LRP analyzers reject TimeDistributed and LayerNormalization with an empty
    NotImplementedError (a 'not a convnet layer' warning check followed by a bare raise); its
    deep_taylor does not raise but routes both by the gradient: on time_distributed its total
    is negative (-0.42 x the logit), on layer_norm it is 0 (LayerNorm's gradient sums to 0).
    Ours supports TimeDistributed (matching iNNvestigate on the Conv3D twin, see
    test_innvestigate_crosscheck) and explains LayerNormalization (mean and std held constant)."""
    for name in ("time_distributed", "layer_norm"):
        data = reference.load(name)
        for analyzer_name in ("lrp.z", "lrp.epsilon", "lrp.z_plus", "lrp.alpha_2_beta_1"):
            assert str(data[f"error/{analyzer_name}/max"]) == "NotImplementedError: "
    td_ratio = (reference.per_sample_sum(reference.load("time_distributed")
                                         ["relevance/deep_taylor/max"])
                / reference.selected_logits("time_distributed"))
    assert np.all(td_ratio < 0), td_ratio
    ln_total = reference.per_sample_sum(reference.load("layer_norm")["relevance/deep_taylor/max"])
    assert np.all(np.abs(ln_total) < 1e-6 * reference.selected_logits("layer_norm"))

    np.testing.assert_allclose(
        reference.per_sample_sum(explain("time_distributed", "deep_taylor")),
        reference.selected_logits("time_distributed"), rtol=1e-5)
    # ours explains LayerNormalization (mean and std held constant, issue 9): finite
    # relevance of the input's shape that does not vanish where iNNvestigate's does
    x = reference.load("layer_norm")["x"]
    total = reference.per_sample_sum(
        analyzers.create_analyzer("deep_taylor", reference.model("layer_norm")).analyze(x))
    assert np.all(np.isfinite(total)) and np.all(np.abs(total) > 1e-3 * np.abs(ln_total).max()
                                                  + 1e-9)

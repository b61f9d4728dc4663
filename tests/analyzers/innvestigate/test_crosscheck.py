"""Our analyzers agree with iNNvestigate 2.1.2 wherever iNNvestigate is right.

The references were computed by ``tests/helpers/innvestigate_zoo/generate.py`` (TF 2.14, tf.keras 2,
iNNvestigate 2.1.2, graph mode) and are checked by ``tox -e innvestigate``. Here the same zoo
models are built with Keras 3 from the stored weights and explained by our engine;
agreement means ``max |ours - theirs| / max |theirs| <= 1e-4`` over the batch. The pairs
where iNNvestigate 2.1.2 is wrong are listed in ``KNOWN_DIFFERENCES`` and each is shown in
``test_innvestigate_faults.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
from innvestigate_zoo import reference, spec
from innvestigate_zoo.reference import explain

_BIAS_MODELS = ("plain_bias", "concat", "softmax_out", "dense_probe", "batchnorm_folded")

#: (model, analyzer) or (model, analyzer, selection) -> why ours differs from iNNvestigate
#: 2.1.2 (and which test in test_innvestigate_faults.py shows it).
KNOWN_DIFFERENCES: dict[tuple[str, ...], str] = {
    **{(m, "lrp.alpha_2_beta_1"): "alpha-beta puts the whole bias in both denominators "
       "(test_alpha_beta_puts_whole_bias_in_both_denominators)" for m in _BIAS_MODELS},
    **{(m, a): "deep_taylor routes average pooling by the gradient "
       "(test_deep_taylor_splits_average_pooling_evenly)"
       for m in ("avgpool", "global_avgpool") for a in ("deep_taylor", "deep_taylor.bounded")},
    **{("residual_add", a): "deep_taylor maps Add to the gradient "
       "(test_deep_taylor_doubles_relevance_at_every_skip_connection)"
       for a in ("deep_taylor", "deep_taylor.bounded")},
    **{(m, a): "BatchNormalization rules (test_deep_taylor_scales_by_gamma_over_sigma_at_"
       "batchnorm, test_lrp_batchnorm_surrogate_squares_the_variance, "
       "test_lrp_z_plus_loses_relevance_at_an_unfolded_batchnorm)"
       for m in ("batchnorm", "bn_probe")
       for a in ("deep_taylor", "deep_taylor.bounded", "lrp.z", "lrp.epsilon",
                 "lrp.alpha_2_beta_1", "lrp.z_plus")},
    **{("time_distributed", a): "deep_taylor maps TimeDistributed to the gradient "
       "(test_time_distributed_and_layer_norm)" for a in ("deep_taylor", "deep_taylor.bounded")},
    **{("layer_norm", a): "LayerNormalization: iNNvestigate's deep_taylor routes it by the "
       "gradient, ours holds mean and std constant (test_time_distributed_and_layer_norm)"
       for a in ("deep_taylor", "deep_taylor.bounded")},
    ("strides_dilation", "lrp.alpha_2_beta_1"): "alpha-beta at neurons without inhibitory "
    "contributions (test_alpha_beta_degenerate_neurons_do_not_conserve)",
    ("plain_nobias", "lrp.alpha_2_beta_1", "min"): "alpha-beta at neurons without activating "
    "contributions (test_alpha_beta_degenerate_neurons_do_not_conserve)",
}
# bn_probe's BN reads the raw (signed) input, where z+ gives the same in both libraries.
KNOWN_DIFFERENCES.pop(("bn_probe", "lrp.z_plus"))

#: The names beyond spec.ANALYZERS that differ on purpose (test_names.py shows each through
#: its exact relation to iNNvestigate's numbers; docs/migrating-from-innvestigate.md).
_RELEVANCE_NAMES = tuple(a for a in spec.ANALYZERS + spec.EXTENDED_ANALYZERS
                         if a.startswith(("lrp", "deep_taylor")) or a in ("deconvnet",
                                                                          "guided_backprop"))
KNOWN_DIFFERENCES.update({
    **{(m, a): "starts from the logit's value there "
       "(test_deconvnet_and_guided_backprop_start_from_the_logit_there)"
       for m in spec.EXTENDED_MODELS if m not in ("smooth_act",) + spec.COMPAT_MODELS
       for a in ("deconvnet", "guided_backprop")},  # (iNNvestigate refuses smooth_act)
    **{(m, "integrated_gradients"): "left Riemann sum there "
       "(test_integrated_gradients_differs_by_its_end_points)"
       for m in ("plain_bias", "plain_nobias", "residual_add", "smooth_act")},
    **{(m, "lrp.z_plus_fast"): "x w+ on the signed input there "
       "(test_z_plus_fast_on_a_signed_input_in_closed_form)" for m in spec.EXTENDED_MODELS
       if m not in spec.COMPAT_MODELS},
    **{(m, a): "alpha-beta puts the whole bias in both denominators "
       "(test_alpha_beta_puts_whole_bias_in_both_denominators)"
       for m in ("plain_bias", "dense_probe")
       for a in ("lrp.alpha_beta", "lrp.alpha_1_beta_0")},
    **{(m, a): "alpha-beta (bias, on convolutions) "
       "(test_alpha_beta_puts_whole_bias_in_both_denominators)"
       for m in ("plain_bias",)
       for a in ("lrp.sequential_preset_a", "lrp.sequential_preset_b",
                 "lrp.sequential_preset_a_flat", "lrp.sequential_preset_b_flat",
                 "lrp.sequential_preset_b_flat_until_idx")},
    **{(m, "deconvnet"): "max-pooling ties: TensorFlow's gradient gives every tied input "
       "the signal (test_deconvnet_and_guided_backprop_start_from_the_logit_there)"
       for m in ("plain_bias", "plain_nobias")},
    **{(m, a): "iNNvestigate's flat / w^2 do not conserve after ReLU + max pooling "
       "(test_flat_and_w_square_do_not_conserve_there)"
       for m in ("plain_bias", "plain_nobias") for a in ("lrp.flat", "lrp.w_square")},
    **{("plain_nobias", a, "min"): "alpha-beta at neurons without activating contributions "
       "(test_alpha_beta_degenerate_neurons_do_not_conserve)"
       for a in ("lrp.alpha_2_beta_1_IB", "lrp.alpha_beta")},
    **{("smooth_act", a): "softplus / sigmoid: ours refuses "
       "(test_gradient_family_runs_where_relevance_rules_refuse)" for a in _RELEVANCE_NAMES
       if f"relevance/{a}/max" in reference.load("smooth_act")},  # (iNNvestigate refuses some)
})

#: The models of the default cross-check. The compat models (spec.COMPAT_MODELS) are made to
#: show where the defaults differ (tied maxima, ReLU layers, signed inputs): there ours is
#: compared with compat="innvestigate" (test_compat_cases.py).
DEFAULT_MODELS = tuple(m for m in spec.REFERENCE_MODELS if m not in spec.COMPAT_MODELS)

AGREEMENT_CASES = [case for case in reference.stored_cases(DEFAULT_MODELS)
                   if case[:2] not in KNOWN_DIFFERENCES and case not in KNOWN_DIFFERENCES]


def test_every_known_difference_names_a_stored_pair():
    stored = set(reference.stored_cases(DEFAULT_MODELS))
    assert set(KNOWN_DIFFERENCES) <= stored | {case[:2] for case in stored}
    assert len(AGREEMENT_CASES) >= 70


@pytest.mark.parametrize(("name", "analyzer_name", "selection"), AGREEMENT_CASES,
                         ids=["/".join(case) for case in AGREEMENT_CASES])
def test_agrees_with_innvestigate(name, analyzer_name, selection):
    theirs = reference.load(name)[f"relevance/{analyzer_name}/{selection}"]
    relevance = explain(name, analyzer_name, selection)
    difference = reference.relative_difference(relevance, theirs)
    assert difference <= reference.RTOL, (
        f"{analyzer_name} on {name} ({selection} logit): relative difference {difference:.3e} "
        f"(sums ours {reference.per_sample_sum(relevance)}, "
        f"theirs {reference.per_sample_sum(theirs)})"
    )


@pytest.mark.parametrize("analyzer_name",
                         [a for a in spec.ANALYZERS if a != "lrp.alpha_2_beta_1"])
def test_batchnorm_folding_matches_innvestigate_on_the_folded_twin(analyzer_name):
    """Ours on Conv3D->BN->ReLU equals iNNvestigate on the same network with BN folded by hand.

    (alpha-beta is left out: the folded twin has biases, see KNOWN_DIFFERENCES.)
    """
    twin = reference.load("batchnorm_folded")
    np.testing.assert_array_equal(twin["x"], reference.load("batchnorm")["x"])
    relevance = explain("batchnorm", analyzer_name)
    difference = reference.relative_difference(relevance,
                                               twin[f"relevance/{analyzer_name}/max"])
    assert difference <= reference.RTOL


@pytest.mark.parametrize("analyzer_name", spec.ANALYZERS)
def test_time_distributed_matches_innvestigate_on_the_conv3d_twin(analyzer_name):
    """Ours on TimeDistributed(Conv2D) equals iNNvestigate on the equivalent Conv3D (1,3,3)."""
    twin = reference.load("time_distributed_conv3d")
    relevance = explain("time_distributed", analyzer_name)
    difference = reference.relative_difference(
        relevance, twin[f"relevance/{analyzer_name}/max"])
    assert difference <= reference.RTOL


@pytest.mark.parametrize("name", [n for n in spec.REFERENCE_MODELS
                                  if spec.get_spec(n).bias_free])
def test_conserving_rules_conserve_on_bias_free_models(name):
    """Ours: R.sum() equals the explained logit for z, epsilon and z+ on bias-free models."""
    logits = reference.selected_logits(name)
    for analyzer_name in ("lrp.z", "lrp.epsilon", "lrp.z_plus", "deep_taylor"):
        totals = reference.per_sample_sum(explain(name, analyzer_name))
        np.testing.assert_allclose(totals, logits, rtol=1e-4, atol=1e-6,
                                   err_msg=f"{analyzer_name} on {name}")


def test_softmax_model_is_explained_at_its_logits():
    """The zoo's softmax model is explained like iNNvestigate's model_wo_softmax."""
    assert spec.get_spec("softmax_out").layers[-1].config["activation"] == "softmax"
    data = reference.load("softmax_out")
    totals = reference.per_sample_sum(explain("softmax_out", "lrp.z_plus"))
    np.testing.assert_allclose(totals, reference.selected_logits("softmax_out"), rtol=1e-4)
    assert np.all(reference.selected_logits("softmax_out") > 1.0)  # logits, not probabilities
    assert reference.relative_difference(
        explain("softmax_out", "lrp.epsilon"), data["relevance/lrp.epsilon/max"]) <= 1e-4

"""The evidence bottleneck (variant "evidence"): what its activations mean.

(a) no clocks: identical windows give constant z, zero raw score gives z = 0; (b) time only in the
attention scores; (c) z is non-decreasing in its own concept's evidence and independent of the
others; (d) relative order is expressible; fast == explicit; the decomposition stays exact.
"""

from __future__ import annotations

import pytest
import torch

from motif.model import AttentionIntervention, ConceptIntervention, TemporalConceptBottleneck, explain, fold_views

C, K = 5, 3


pytestmark = pytest.mark.usefixtures("single_thread")


def evidence_model(*, seed: int = 0, dtype=torch.float64, impl: str = "fast", num_layers: int = 1,
                   num_concepts: int = C) -> TemporalConceptBottleneck:
    """An evidence bottleneck away from its initial point, with input statistics set."""
    torch.manual_seed(seed)
    model = TemporalConceptBottleneck(num_concepts, K, variant="evidence", attention_impl=impl,
                                      num_layers=num_layers).to(dtype).eval()
    mean = torch.rand(num_concepts, dtype=dtype) * 0.3
    std = torch.rand(num_concepts, dtype=dtype) * 0.1 + 0.02
    model.set_input_statistics(mean, std)
    with torch.no_grad():
        model.encoder.position_bias.uniform_(-2.0, 2.0)
        model.encoder.raw_scale.uniform_(-1.0, 2.0)
        model.encoder.raw_threshold.uniform_(-3.0, 1.0)
    model.stats = (mean, std)
    return model


def standardise(raw: torch.Tensor, model) -> torch.Tensor:
    mean, std = model.stats
    return (raw - mean) / std


def raw_scores(batch: int, windows: int, seed: int = 1, dtype=torch.float64) -> torch.Tensor:
    """Raw concept scores a = clamp(cos, 0) in [0, 0.5], some exactly 0."""
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, windows, C, generator=generator, dtype=dtype) * 0.6 - 0.1).clamp_min(0.0)


@pytest.mark.parametrize("impl", ["fast", "explicit"])
def test_identical_windows_give_constant_activations(impl):
    model = evidence_model(impl=impl)
    window = raw_scores(2, 1)
    x = standardise(window.expand(2, 30, C), model)
    padding_mask = torch.arange(30)[None] >= torch.tensor([30, 13])[:, None]
    z = model(x, padding_mask).concepts
    for b, length in enumerate((30, 13)):
        reference = z[b, :1]
        deviation = (z[b, :length] - reference).abs().max() / reference.abs().max()
        assert deviation <= 1e-10, deviation
    assert z[0].abs().max() > 0


@pytest.mark.parametrize("impl", ["fast", "explicit"])
def test_zero_raw_score_gives_zero_activation_everywhere(impl):
    model = evidence_model(impl=impl, dtype=torch.float32)
    raw = raw_scores(3, 40, dtype=torch.float32)
    raw[:, :, 2] = 0.0                          # concept 2 never scores
    raw[1] = 0.0                                # video 1 scores nothing at all
    z = model(standardise(raw, model)).concepts.unflatten(-1, (model.num_views, C))
    assert (z[:, :, :, 2] == 0).all()
    assert (z[1] == 0).all()
    assert z[0, :, :, [0, 1, 3, 4]].max() > 0


def test_activation_is_monotone_in_its_own_evidence_and_blind_to_the_others():
    """Jacobian: d z[.., view, c] / d x[.., c'] is >= 0 for c' = c and exactly 0 for c' != c."""
    model = evidence_model()
    x = standardise(raw_scores(2, 12), model).requires_grad_()
    for c in range(C):
        z = model(x).concepts.unflatten(-1, (model.num_views, C))
        for t in range(0, 12, 3):
            (grad,) = torch.autograd.grad(z[:, t, :, c].sum(), x, retain_graph=True)
            assert (grad[..., c] >= 0).all()
            others = [o for o in range(C) if o != c]
            assert (grad[..., others] == 0).all()


def test_raising_one_score_never_lowers_any_activation_of_that_concept():
    """Finite differences, including the clamp at zero: raise a[t0, c] and compare every channel."""
    model = evidence_model()
    raw = raw_scores(1, 16)
    base = model(standardise(raw, model)).concepts.unflatten(-1, (model.num_views, C))
    generator = torch.Generator().manual_seed(3)
    for _ in range(20):
        t0, c = int(torch.randint(16, (1,), generator=generator)), int(torch.randint(C, (1,), generator=generator))
        raised = raw.clone()
        raised[0, t0, c] += float(torch.rand(1, generator=generator)) * 0.3
        z = model(standardise(raised, model)).concepts.unflatten(-1, (model.num_views, C))
        assert (z[..., c] >= base[..., c] - 1e-12).all()
        others = [o for o in range(C) if o != c]
        torch.testing.assert_close(z[..., others], base[..., others], atol=0, rtol=0)


def test_no_positional_encoding_in_the_values():
    """A window's activation depends on time only through the attention: the view "now" of a window
    is the same wherever the window sits in the video."""
    model = evidence_model()
    raw = raw_scores(1, 20)
    shifted = torch.cat([raw_scores(1, 7, seed=5), raw], dim=1)
    z = model(standardise(raw, model)).concepts[0, :, :C]
    z_shifted = model(standardise(shifted, model)).concepts[0, 7:, :C]
    torch.testing.assert_close(z, z_shifted, atol=0, rtol=0)


def test_relative_order_is_expressible():
    """A hand-set classifier reading "A (before)" + "B (now)" scores A-then-B above B-then-A wherever the
    pair sits, which a single channel per concept summing past and present could not."""
    model = TemporalConceptBottleneck(2, K, variant="evidence", tau=16.0).double().eval()   # near-max pooling
    with torch.no_grad():
        model.encoder.position_bias.zero_()
        model.encoder.position_bias[:, :, 1:7] = 6.0     # attend to the last (next) six windows
        model.encoder.raw_scale.fill_(0.5413)         # softplus = 1
        model.encoder.raw_threshold.fill_(-9.0)       # threshold ~ 0
        model.encoder.evidence_offset.zero_()          # X is the evidence itself
        model.classifier.weight.zero_()
        model.classifier.bias.zero_()
        views = model.views
        model.classifier.weight[0, views.index("before") * 2 + 0] = 1.0    # A seen at or before t
        model.classifier.weight[0, views.index("now") * 2 + 1] = 1.0       # B now
    scores = {}
    for start in (0, 9, 20):
        for name, order in (("AB", (0, 1)), ("BA", (1, 0))):
            x = torch.zeros(1, 30, 2, dtype=torch.float64)
            x[0, start:start + 2, order[0]] = 1.0
            x[0, start + 3:start + 5, order[1]] = 1.0
            scores[name, start] = float(model(x).logits[0, 0])
    assert min(scores["AB", s] for s in (0, 9, 20)) > max(scores["BA", s] for s in (0, 9, 20)) + 0.25, scores


@pytest.mark.parametrize("dtype, tolerance", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_fast_and_explicit_paths_agree_for_short_and_long_videos(dtype, tolerance):
    """Videos shorter and longer than the distance buckets, with padding; outputs and gradients."""
    fast = evidence_model(dtype=dtype)
    explicit = evidence_model(dtype=dtype, impl="explicit")
    explicit.load_state_dict(fast.state_dict())
    raw = raw_scores(4, 70, dtype=dtype)
    padding_mask = torch.arange(70)[None] >= torch.tensor([70, 33, 5, 1])[:, None]
    results = []
    for model in (fast, explicit):
        x = standardise(raw, fast).requires_grad_()
        out = model(x, padding_mask)
        (grad,) = torch.autograd.grad(out.logits.sum() + out.concepts.square().sum(), x)
        results.append((out.concepts, out.logits, grad))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, atol=tolerance, rtol=tolerance)


def test_maps_are_causal_and_anti_causal_and_depend_on_time_only():
    model = evidence_model()
    x = standardise(raw_scores(2, 15), model)
    before, after = model(x, return_attention=True).attentions
    assert torch.equal(before.triu(1), torch.zeros_like(before))
    assert torch.equal(after.tril(-1), torch.zeros_like(after))
    other = model(standardise(raw_scores(2, 15, seed=9), model), return_attention=True).attentions
    torch.testing.assert_close(other[0], before, atol=0, rtol=0)   # content does not move the maps


def test_decomposition_is_exact_and_folds_to_concepts():
    model = evidence_model()
    raw = raw_scores(3, 25)
    padding_mask = torch.arange(25)[None] >= torch.tensor([25, 10, 3])[:, None]
    out = model(standardise(raw, model), padding_mask)
    e = explain(model, out, padding_mask)
    assert e.residual.abs().max() < 1e-10
    by_concept = fold_views(e.global_importance, C)
    assert by_concept.shape == (3, C)
    torch.testing.assert_close(by_concept.sum(-1), e.global_importance.sum(-1))


def test_concept_interventions_edit_every_view_of_a_concept():
    model = evidence_model()
    x = standardise(raw_scores(2, 9), model)
    z = model(x, concept_intervention=ConceptIntervention(mode="zero", concepts=[1], cells=[(4, 3)])).concepts
    z = z.unflatten(-1, (model.num_views, C))
    assert (z[..., 1] == 0).all() and (z[:, 4, :, 3] == 0).all()
    assert z[..., 0].abs().sum() > 0


def test_identity_attention_intervention_turns_the_temporal_views_into_the_present():
    model = evidence_model()
    with torch.no_grad():
        model.encoder.raw_scale.copy_(model.encoder.raw_scale[:1].expand_as(model.encoder.raw_scale))
        model.encoder.raw_threshold.copy_(model.encoder.raw_threshold[:1].expand_as(model.encoder.raw_threshold))
    x = standardise(raw_scores(2, 11), model)
    z = model(x, attention_intervention=AttentionIntervention("identity")).concepts.unflatten(-1, (3, C))
    torch.testing.assert_close(z[:, :, 1], z[:, :, 0])
    torch.testing.assert_close(z[:, :, 2], z[:, :, 0])
    assert not torch.allclose(model(x).concepts.unflatten(-1, (3, C))[:, :, 1], z[:, :, 0])


def test_settings_and_statistics_travel_with_the_state_dict():
    model = evidence_model()
    copy = TemporalConceptBottleneck(C, K, variant="evidence").double().eval()
    copy.load_state_dict(model.state_dict())
    x = standardise(raw_scores(1, 6), model)
    torch.testing.assert_close(copy(x).logits, model(x).logits)
    assert copy.channel_names(list("abcde"))[:7] == ["a", "b", "c", "d", "e", "a (before)", "b (before)"]
    with pytest.raises(ValueError, match="num_layers"):
        TemporalConceptBottleneck(C, K, variant="evidence", num_layers=2)
    only_now = TemporalConceptBottleneck(C, K, variant="evidence", num_layers=0)
    assert only_now.views == ("now",) and only_now.classifier.weight.shape == (K, C)


def test_input_statistics_set_the_evidence_and_the_starting_thresholds():
    """After set_input_statistics a fresh model reads e = max(0, a)/σ and its view "now" starts as
    max(0, X − 1): on where the score is at least one training std above its mean."""
    model = TemporalConceptBottleneck(C, K, variant="evidence").double().eval()
    mean, std = torch.rand(C, dtype=torch.float64) * 0.3, torch.rand(C, dtype=torch.float64) * 0.1 + 0.02
    model.set_input_statistics(mean, std)
    raw = raw_scores(2, 8)
    x = (raw - mean) / std
    torch.testing.assert_close(model.encoder.evidence(x), raw / std)
    torch.testing.assert_close(model(x).concepts[..., :C], (x - 1.0).clamp_min(0.0), atol=1e-6, rtol=1e-6)
    with pytest.raises(ValueError, match="statistics"):
        model.set_input_statistics(mean[:2], std)


@pytest.mark.parametrize("windows", [40, 3000])
def test_fast_path_keeps_identical_windows_constant_in_float32(windows):
    """One random window repeated over a long float32 video, each threshold 0.999 of α·e so that z = α·e − θ
    is a small difference of large numbers: z stays constant over time to 1e-6 of its largest value
    (pooling the evidence itself instead of its deviation from the video's mean drifts by ~1e-4 here)."""
    model = evidence_model(dtype=torch.float32)
    window = raw_scores(1, 1, seed=3, dtype=torch.float32) * 0.5 + 0.25
    x = standardise(window, model).float()
    with torch.no_grad():
        target = model.encoder.scale() * model.encoder.evidence(x)[0] * 0.999          # [V, C] = θ
        model.encoder.raw_threshold.copy_(target + torch.log(-torch.expm1(-target)))   # softplus⁻¹
    z = model(x.expand(1, windows, C)).concepts[0]
    assert z.min() > 0
    assert ((z - z[:1]).abs().max() / z.abs().max()) < 1e-6

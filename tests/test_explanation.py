"""The exact logit decomposition logit_k = Σ_c G[c] + b_k + H(π)/τ with π = softmax(τ·ℓ)."""

from __future__ import annotations

import pytest
import torch

from motif.model import TemporalConceptBottleneck, explain, explain_class, lse_pool


def random_batch(seed: int, num_concepts: int = 7, lengths: tuple[int, ...] = (13, 5, 1, 9)):
    generator = torch.Generator().manual_seed(seed)
    num_windows = max(lengths)
    x = torch.randn(len(lengths), num_windows, num_concepts, generator=generator)
    padding_mask = torch.arange(num_windows)[None, :] >= torch.tensor(lengths)[:, None]
    return x, padding_mask


def trained_looking_model(tau: float, seed: int, num_concepts: int = 7, num_classes: int = 5):
    torch.manual_seed(seed)
    model = TemporalConceptBottleneck(num_concepts, num_classes, num_layers=2, tau=tau).eval()
    with torch.no_grad():
        model.classifier.weight.uniform_(0.0, 3.0)
        model.classifier.bias.uniform_(-2.0, 2.0)
        model.encoder.concept_head.shift.uniform_(0.0, 1.0)
    return model


@pytest.mark.parametrize("tau", [0.5, 1.0, 4.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_logit_decomposes_exactly(tau, seed):
    model = trained_looking_model(tau, seed)
    x, padding_mask = random_batch(seed)
    out = model(x, padding_mask)
    for class_index in [None, 0, 3]:
        explanation = explain(model, out, padding_mask, class_index=class_index)
        assert explanation.residual.abs().max() < 1e-4, explanation.residual
        assert explanation.entropy.abs().max() > 1e-3        # the entropy term is really needed
    predicted = explain(model, out, padding_mask)
    assert torch.equal(predicted.class_index, out.logits.argmax(-1))


@pytest.mark.parametrize("tau", [0.5, 4.0])
def test_window_importance_is_the_gradient_of_the_pooling(tau):
    """π_t = ∂ logit_k / ∂ ℓ_t, i.e. softmax(τ·ℓ) and not softmax(ℓ/τ); 0 on padded windows."""
    model = trained_looking_model(tau, 0)
    x, padding_mask = random_batch(0)
    out = model(x, padding_mask)
    window_logits = out.window_logits.detach().requires_grad_()
    pooled = model.readout(out.concepts.detach(), padding_mask)   # same pooling code as the model
    explanation = explain(model, pooled, padding_mask, class_index=2)
    grad, = torch.autograd.grad(lse_pool(window_logits, padding_mask, tau)[:, 2].sum(), window_logits)
    torch.testing.assert_close(explanation.window_importance, grad[..., 2])
    torch.testing.assert_close(explanation.window_importance.sum(-1), torch.ones(4))
    assert (explanation.window_importance[padding_mask] == 0).all()


def test_relevance_scores_and_global_importance():
    model = trained_looking_model(1.0, 3)
    x, padding_mask = random_batch(3)
    out = model(x, padding_mask)
    explanation = explain(model, out, padding_mask, class_index=torch.tensor([0, 1, 2, 3]))
    weight, bias = model.classifier.weight, model.classifier.bias
    for b, k in enumerate([0, 1, 2, 3]):
        torch.testing.assert_close(explanation.relevance[b], out.concepts[b] * weight[k])
        valid = ~padding_mask[b]
        torch.testing.assert_close(explanation.window_scores[b][valid], out.window_logits[b, valid, k])
        torch.testing.assert_close(explanation.global_importance[b],
                                   (explanation.window_importance[b, :, None] * explanation.relevance[b]).sum(0))
        assert explanation.bias[b] == bias[k]


def test_single_video_matches_batch_and_rejects_empty_video():
    model = trained_looking_model(4.0, 1)
    x, padding_mask = random_batch(1)
    out = model(x, padding_mask)
    batched = explain(model, out, padding_mask, class_index=1)
    single = explain_class(out.concepts[1, :5], model.classifier.weight, model.classifier.bias, 4.0, class_index=1,
                           logits=out.logits[1])
    assert single.relevance.shape == (5, 7) and single.global_importance.shape == (7,)
    torch.testing.assert_close(single.global_importance, batched.global_importance[1])
    torch.testing.assert_close(single.residual, batched.residual[1])
    padding_mask[2] = True
    with pytest.raises(ValueError, match="no valid window"):
        explain_class(out.concepts, model.classifier.weight, model.classifier.bias, 4.0, padding_mask=padding_mask)

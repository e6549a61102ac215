"""The binned Taylor-series attention of long videos: the numbers and gradients of the written-out softmax,
when the model takes it, and what the fused per-concept maps keep for the backward."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import motif.model.attention as attention_module
from motif.model import TemporalConceptBottleneck, attention_maps
from motif.model.binned_attention import MIN_WINDOWS, WINDOWS_PER_BIN, binned_attention, binned_attention_bins
from motif.model.blocks import ConceptFFN
from motif.model.dropout import dropout_keys, sample_keys
from motif.model.heads import LN2, ConceptActivation

pytestmark = pytest.mark.usefixtures("single_thread")


def written_out(x, alpha, beta, key_valid, value_scale=None, value_shift=None):
    """The reference: per channel, q = α·x + β, k = v = x, explicit masked softmax maps [B, C, T, T], then
    a·pooled + b."""
    keys = x.transpose(1, 2).unsqueeze(-1)
    queries = beta[:, None, None] + alpha[:, None, None] * keys
    pooled = (attention_maps(queries, keys, key_valid) @ keys).squeeze(-1).transpose(1, 2)
    return pooled if value_scale is None else pooled * value_scale + value_shift


def inputs(windows: int, channels: int, alpha_scale: float, dtype=torch.float64, seed: int = 0,
           padding_scale: float = 40.0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(3, windows, channels, generator=generator, dtype=dtype)
    alpha = alpha_scale * torch.randn(channels, generator=generator, dtype=dtype)
    beta = torch.randn(channels, generator=generator, dtype=dtype)
    key_valid = torch.ones(3, windows, dtype=torch.bool)
    key_valid[1, windows // 2:] = False
    key_valid[2, : windows // 3] = False
    x[1, windows // 2:] *= padding_scale   # large values in padded windows must not widen the key bins
    return x, alpha, beta, key_valid


@pytest.mark.parametrize("alpha_scale", [0.05, 1.0, 6.0])
@pytest.mark.parametrize("masked", [False, True])
def test_binned_attention_gives_the_written_out_softmax_and_its_gradients_in_float64(alpha_scale, masked):
    """Any number of bins (small and large |q|·range(k)), with and without padded keys: outputs and the
    gradients of x, α, β and the value map a, b equal the explicit softmax's to 1e-11 (the series is cut
    below float64 rounding)."""
    x, alpha, beta, key_valid = inputs(97, 5, alpha_scale)
    key_valid = key_valid if masked else None
    value_scale, value_shift = torch.randn(2, 5, dtype=x.dtype, generator=torch.Generator().manual_seed(2))
    grad = torch.randn(x.shape, dtype=x.dtype, generator=torch.Generator().manual_seed(1))
    results = []
    for attend in (binned_attention, written_out):
        leaves = [t.clone().requires_grad_() for t in (x, alpha, beta, value_scale, value_shift)]
        out = attend(*leaves[:3], key_valid, *leaves[3:])
        results.append((out, *torch.autograd.grad((out * grad).sum(), leaves)))
    for name, got, expected in zip(("out", "x", "alpha", "beta", "value_scale", "value_shift"), *results):
        torch.testing.assert_close(got, expected, atol=1e-11 * (1 + expected.abs().max().item()), rtol=0, msg=name)


def test_binned_attention_passes_gradcheck():
    x, alpha, beta, key_valid = inputs(23, 3, 2.0)
    leaves = [t.clone().requires_grad_() for t in (x, alpha, beta)]
    assert torch.autograd.gradcheck(lambda *a: binned_attention(*a, key_valid), leaves)


def test_binned_attention_in_float32_is_as_close_to_float64_as_the_fused_kernel():
    """float32 errors against the float64 softmax: no more than twice those of scaled_dot_product_attention
    on the same float32 inputs (plus 1e-6 of the scale), for outputs and all gradients."""
    x, alpha, beta, key_valid = inputs(1500, 4, 3.0, dtype=torch.float32, padding_scale=1.0)
    grad = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))

    def fused(x, alpha, beta, key_valid):
        keys = x.transpose(1, 2).unsqueeze(-1)
        queries = beta[:, None, None] + alpha[:, None, None] * keys
        return F.scaled_dot_product_attention(queries, keys, keys, attn_mask=key_valid[:, None, None, :],
                                              scale=1.0).squeeze(-1).transpose(1, 2)

    def run(attend, dtype):
        leaves = [t.to(dtype).requires_grad_() for t in (x, alpha, beta)]
        out = attend(*leaves, key_valid)
        return [out, *torch.autograd.grad((out * grad.to(dtype)).sum(), leaves)]

    exact, binned, kernel = run(written_out, torch.float64), run(binned_attention, torch.float32), run(fused, torch.float32)
    for name, reference, ours, theirs in zip(("out", "x", "alpha", "beta"), exact, binned, kernel):
        our_error = (ours.double() - reference).abs().max().item()
        kernel_error = (theirs.double() - reference).abs().max().item()
        assert our_error <= 2 * kernel_error + 1e-6 * reference.abs().max().item(), (name, our_error, kernel_error)


def test_long_videos_take_the_binned_path_and_keep_the_explicit_numbers(monkeypatch):
    """A model on T ≥ MIN_WINDOWS windows: the fast path goes through binned_attention, and its outputs and
    parameter gradients equal the explicit path's (float64, padded videos, two layers)."""
    calls = []
    monkeypatch.setattr(attention_module, "binned_attention",
                        lambda *args, **kwargs: calls.append(1) or binned_attention(*args, **kwargs))
    windows = MIN_WINDOWS + 100
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, windows, 6, generator=generator, dtype=torch.float64)
    padding_mask = torch.arange(windows)[None, :] >= torch.tensor([windows, windows - 300])[:, None]
    results = []
    for impl in ("fast", "explicit"):
        torch.manual_seed(0)
        model = TemporalConceptBottleneck(6, 3, num_layers=2, head_dim=2, attention_impl=impl).double().train()
        model.input_dropout.p = 0.0
        for layer in model.encoder.layers:
            layer.dropout.p = 0.0
        out = model(x, padding_mask)
        out.logits.sum().add(out.concepts.square().mean()).backward()
        results.append((out.logits, out.concepts, {n: p.grad for n, p in model.named_parameters()}))
    assert len(calls) == 2
    (logits, concepts, grads), (logits_ref, concepts_ref, grads_ref) = results
    torch.testing.assert_close(logits, logits_ref, atol=1e-10, rtol=0)
    torch.testing.assert_close(concepts, concepts_ref, atol=1e-10, rtol=0)
    for name in grads:
        torch.testing.assert_close(grads[name], grads_ref[name], atol=1e-9, rtol=1e-9, msg=name)


def test_binned_attention_under_bfloat16_autocast_computes_in_float32():
    x, alpha, beta, key_valid = inputs(200, 3, 2.0, dtype=torch.float32, padding_scale=1.0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = binned_attention(x, alpha, beta, key_valid)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, binned_attention(x, alpha, beta, key_valid), atol=0, rtol=0)


def test_the_binned_path_is_taken_only_where_it_pays():
    x, alpha, beta, key_valid = inputs(MIN_WINDOWS, 4, 0.1, dtype=torch.float32, padding_scale=1.0)
    bins = binned_attention_bins(x, alpha, beta, key_valid)
    assert bins is not None and 1 <= bins <= MIN_WINDOWS // WINDOWS_PER_BIN
    assert binned_attention_bins(x[:, : MIN_WINDOWS - 1], alpha, beta, key_valid[:, : MIN_WINDOWS - 1]) is None
    assert binned_attention_bins(x.bfloat16(), alpha.bfloat16(), beta.bfloat16(), key_valid) is None
    spread = (x.amax() - x.amin()).item()
    huge = torch.full_like(alpha, 4 * WINDOWS_PER_BIN * MIN_WINDOWS / spread)   # needs more than T / 16 bins
    assert binned_attention_bins(x, huge, beta, key_valid) is None


def test_binned_attention_rejects_bad_inputs():
    x, alpha, beta, key_valid = inputs(20, 3, 1.0)
    with pytest.raises(ValueError, match=r"need x \[B, T, C\] and alpha, beta, value_scale, value_shift \[C\]"):
        binned_attention(x, alpha[:2], beta, key_valid)
    with pytest.raises(ValueError, match=r"value_shift \[C\]; got .*\[2\]$"):
        binned_attention(x, alpha, beta, key_valid, alpha, beta[:2])
    with pytest.raises(ValueError, match="key_valid must be bool"):
        binned_attention(x, alpha, beta, key_valid.float())
    with pytest.raises(ValueError, match="float32 or float64"):
        binned_attention(x.half(), alpha.half(), beta.half(), key_valid)


@pytest.mark.parametrize("hidden", [1, 3])
def test_the_ffn_and_concept_head_recompute_in_backward_to_autograd_gradients(hidden):
    """The per-concept FFN and the concept head keep only their input for the backward; their gradients are
    autograd's on the same formula (float64, exact up to rounding)."""
    torch.manual_seed(0)
    ffn, head = ConceptFFN(5, hidden).double(), ConceptActivation(5).double()
    with torch.no_grad():
        head.scale.uniform_(-2.0, 2.0)
        head.shift.uniform_(-1.0, 1.0)
    y = torch.randn(2, 30, 5, dtype=torch.float64, requires_grad=True)
    grad = torch.randn(2, 30, 5, dtype=torch.float64)

    def ffn_formula(y):
        hidden_units = F.gelu(torch.addcmul(ffn.in_bias, y.unsqueeze(-1), ffn.in_weight))
        return (hidden_units * ffn.out_weight).sum(dim=-1) + ffn.out_bias

    def head_formula(y):
        return F.relu(F.softplus(torch.addcmul(head.shift, y, head.scale)) - LN2)

    for module, formula in ((ffn, ffn_formula), (head, head_formula)):
        leaves = [y, *module.parameters()]
        fused, reference = module(y), formula(y)
        torch.testing.assert_close(fused, reference, atol=1e-14, rtol=0)
        for got, expected in zip(torch.autograd.grad((fused * grad).sum(), leaves),
                                 torch.autograd.grad((reference * grad).sum(), leaves)):
            torch.testing.assert_close(got, expected, atol=1e-13, rtol=1e-13)


def test_a_long_video_train_step_keeps_few_full_size_tensors():
    """What the fast train step of a long video saves for the backward: 6 distinct tensors of B·T·C numbers
    (12 before the binned attention and the recomputing FFN and concept head) and nothing larger: no [T, J]
    or [T, T] intermediates."""
    windows, concepts = MIN_WINDOWS + 24, 8
    torch.manual_seed(0)
    model = TemporalConceptBottleneck(concepts, 3).train()
    x = torch.randn(1, windows, concepts)
    full_size = windows * concepts
    storages = {}

    def keep(tensor):
        if tensor.numel() >= full_size and tensor.is_floating_point():
            storages[tensor.untyped_storage().data_ptr()] = tensor.numel()
        return tensor

    with dropout_keys(model, sample_keys(["video"], 0)), \
            torch.autograd.graph.saved_tensors_hooks(keep, lambda tensor: tensor):   # masks as in training
        model(x).logits.sum().backward()
    assert max(storages.values()) == full_size
    assert len(storages) <= 6, len(storages)

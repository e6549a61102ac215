"""The temporal concept bottleneck: equivalence of the attention paths, padding, isolation, any T,
interventions, variants, and order sensitivity on the synthetic order task."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from motif.model import (
    ATTENTION_KINDS,
    MODEL_VARIANTS,
    AttentionIntervention,
    ConceptIntervention,
    NonNegativeLinear,
    TemporalConceptBottleneck,
    attention_heads,
    attention_maps,
    cached_sinusoidal_encoding,
    explain,
    fast_attention,
    key_validity,
    sinusoidal_encoding,
)
from motif.world.order_task import make_order_task

pytestmark = pytest.mark.usefixtures("single_thread")


def make_inputs(lengths: list[int], num_concepts: int, *, num_windows: int | None = None, seed: int = 0,
                dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """x [B, T, C] with garbage (large values) in the padded windows, and the padding mask [B, T]."""
    generator = torch.Generator().manual_seed(seed)
    num_windows = num_windows or max(lengths)
    x = torch.randn(len(lengths), num_windows, num_concepts, generator=generator, dtype=dtype)
    padding_mask = torch.arange(num_windows)[None, :] >= torch.tensor(lengths)[:, None]
    x = torch.where(padding_mask[..., None], 50.0 * torch.randn(x.shape, generator=generator, dtype=dtype), x)
    return x, padding_mask


def make_model(num_concepts: int = 6, num_classes: int = 4, *, seed: int = 0, dtype: torch.dtype = torch.float32,
               **kwargs) -> TemporalConceptBottleneck:
    torch.manual_seed(seed)
    model = TemporalConceptBottleneck(num_concepts, num_classes, **kwargs).to(dtype).eval()
    with torch.no_grad():  # leave the initial point: non-trivial logit scales, concept shifts and gates
        for name, parameter in model.named_parameters():
            if name.endswith(("logit_scale", "concept_head.shift", "position_bias", "raw_threshold")) or "gate" in name:
                parameter.uniform_(-1.0, 1.0)
    return model


def layers_for(variant: str, wanted: int) -> int:
    """``wanted`` layers, or as many as the variant takes."""
    most = MODEL_VARIANTS[variant].max_layers
    return wanted if most is None else min(wanted, most)


def output_tensors(out) -> dict[str, torch.Tensor]:
    return {"concepts": out.concepts, "window_logits": out.window_logits, "logits": out.logits,
            "pooled_concepts": out.pooled_concepts}


# --------------------------------------------------------------------------- positional encoding, any T

def test_positional_encoding_formula_and_prefix():
    pe = sinusoidal_encoding(3000, 7, dtype=torch.float64)
    assert pe.shape == (3000, 7)
    t, c = 2345, 5   # odd channel: cosine with the frequency of pair 2
    assert pe[t, c].item() == pytest.approx(torch.cos(torch.tensor(t / 10000 ** (4 / 7), dtype=torch.float64)).item())
    assert pe[t, 4].item() == pytest.approx(torch.sin(torch.tensor(t / 10000 ** (4 / 7), dtype=torch.float64)).item())
    assert torch.equal(sinusoidal_encoding(50, 7, dtype=torch.float64), pe[:50])   # computed for T, no table


def test_positional_encoding_is_cached_per_length_device_and_dtype():
    """The forward pass reads a prefix of one cached table per (C, device, dtype): equal to the encoding
    computed for T, not recomputed for a shorter T, extended for a longer one."""
    first = cached_sinusoidal_encoding(40, 7, dtype=torch.float32, device=torch.device("cpu"))
    assert torch.equal(first, sinusoidal_encoding(40, 7))
    shorter = cached_sinusoidal_encoding(25, 7, dtype=torch.float32, device=torch.device("cpu"))
    assert torch.equal(shorter, sinusoidal_encoding(25, 7)) and shorter.data_ptr() == first.data_ptr()
    longer = cached_sinusoidal_encoding(300, 7, dtype=torch.float32, device=torch.device("cpu"))
    assert torch.equal(longer, sinusoidal_encoding(300, 7)) and longer.shape == (300, 7)
    double = cached_sinusoidal_encoding(25, 7, dtype=torch.float64, device=torch.device("cpu"))
    assert double.dtype == torch.float64 and torch.equal(double, sinusoidal_encoding(25, 7, dtype=torch.float64))
    model = make_model(num_concepts=7)
    x, _ = make_inputs([12], 7)
    reference = model(x).logits
    with pytest.MonkeyPatch.context() as patch:    # the forward pass no longer computes the encoding
        patch.setattr("motif.model.positional.sinusoidal_encoding", None)
        torch.testing.assert_close(model(x).logits, reference, atol=0, rtol=0)


@pytest.mark.parametrize("variant", MODEL_VARIANTS.names())
def test_any_number_of_windows(variant):
    model = make_model(num_concepts=4, num_classes=3, variant=variant)
    x, padding_mask = make_inputs([2500, 2200], 4)
    out = model(x, padding_mask)
    assert out.window_logits.shape == (2, 2500, 3)
    assert all(torch.isfinite(v).all() for v in output_tensors(out).values())


# --------------------------------------------------------------------------- fast vs explicit

@pytest.mark.parametrize("variant", MODEL_VARIANTS.names())
@pytest.mark.parametrize("dtype, tolerance", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
@pytest.mark.parametrize("head_dim, ffn_hidden", [(1, 1), (2, 3)])
def test_fast_and_explicit_paths_agree(variant, dtype, tolerance, head_dim, ffn_hidden):
    """Outputs and every parameter gradient agree (float64 to 1e-10, float32 to 1e-5), with padding
    and one fully padded video in the batch; the fast MoTIF block folds its LayerNorms into width-1
    attention, the explicit one writes out the maps of Q, K, V of width d."""
    layers = layers_for(variant, 2)
    fast = make_model(num_concepts=10, num_classes=5, num_layers=layers, head_dim=head_dim, ffn_hidden=ffn_hidden,
                      variant=variant, dtype=dtype)
    explicit = make_model(num_concepts=10, num_classes=5, num_layers=layers, head_dim=head_dim, ffn_hidden=ffn_hidden,
                          variant=variant, dtype=dtype, attention_impl="explicit")
    explicit.load_state_dict(fast.state_dict())
    x, padding_mask = make_inputs([17, 9, 1, 0], 10, dtype=dtype)
    weights = torch.randn(4, 5, dtype=dtype)
    results = []
    for model in (fast, explicit):
        model.zero_grad()
        out = model(x, padding_mask)
        (out.logits * weights).sum().add(out.concepts.square().sum()).backward()
        grads = {name: p.grad.clone() for name, p in model.named_parameters()}
        results.append((output_tensors(out), grads))
    (out_fast, grads_fast), (out_explicit, grads_explicit) = results
    for name in out_fast:
        torch.testing.assert_close(out_fast[name], out_explicit[name], atol=tolerance, rtol=0, msg=name)
    assert grads_fast.keys() == grads_explicit.keys()
    for name in grads_fast:
        torch.testing.assert_close(grads_fast[name], grads_explicit[name], atol=tolerance, rtol=tolerance, msg=name)
    assert all(torch.isfinite(g).all() for g in grads_fast.values())


@pytest.mark.parametrize("head_dim, ffn_hidden", [(1, 1), (3, 2)])
def test_layer_norm_affines_fold_into_width_one_attention_and_the_ffn(head_dim, ffn_hidden):
    """forward_normalised(x̂, γ, δ) = forward(γ·x̂ + δ) for the attention (any head width d becomes one
    width-1 attention with queries α·x̂ + β, keys and values x̂) and for the FFN, to float64 rounding."""
    layer = make_model(num_concepts=7, head_dim=head_dim, ffn_hidden=ffn_hidden, dtype=torch.float64).encoder.layers[0]
    x, padding_mask = make_inputs([11, 6], 7, dtype=torch.float64)
    x_hat = torch.nn.functional.layer_norm(x, (7,))
    gamma, delta = (torch.randn(7, dtype=torch.float64, generator=torch.Generator().manual_seed(i)) for i in (1, 2))
    key_valid = key_validity(padding_mask)
    unfolded, _ = layer.attention(gamma * x_hat + delta, key_valid)
    folded = layer.attention.forward_normalised(x_hat, gamma, delta, key_valid)
    torch.testing.assert_close(folded, unfolded, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(layer.ffn.forward_normalised(x_hat, gamma, delta), layer.ffn(gamma * x_hat + delta),
                               atol=1e-12, rtol=1e-12)


def test_head_width_padding_for_fused_kernels_changes_nothing():
    generator = torch.Generator().manual_seed(0)
    query, key, value = (torch.randn(2, 3, 9, 1, generator=generator, dtype=torch.float64) for _ in range(3))
    _, padding_mask = make_inputs([9, 4], 3)
    key_valid = key_validity(padding_mask)
    reference = attention_maps(query, key, key_valid) @ value
    for alignment in (1, 8):
        torch.testing.assert_close(fast_attention(query, key, value, key_valid, head_alignment=alignment), reference)


@pytest.mark.parametrize("kind", [None, *ATTENTION_KINDS])
def test_fast_path_stores_no_attention_maps(kind):
    """Neither the output nor the autograd graph of the fast path holds a [B, C, T, T] tensor, with or
    without an attention intervention on every concept."""
    batch, windows, concepts = 2, 48, 8
    x, padding_mask = make_inputs([48, 30], concepts)
    intervention = None if kind is None else AttentionIntervention(kind)
    for impl, expect_maps in (("fast", False), ("explicit", True)):
        model = make_model(num_concepts=concepts, attention_impl=impl).train()
        saved = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.numel()) or t, lambda t: t):
            out = model(x, padding_mask, attention_intervention=intervention)
        assert out.attentions is None
        assert (max(saved) >= batch * concepts * windows * windows) == expect_maps


# --------------------------------------------------------------------------- padding

@pytest.mark.parametrize("variant", MODEL_VARIANTS.names())
@pytest.mark.parametrize("impl", ["fast", "explicit"])
def test_appending_padding_changes_nothing(variant, impl):
    model = make_model(num_concepts=6, num_layers=layers_for(variant, 2), variant=variant,
                       attention_impl=impl)
    x, _ = make_inputs([11], 6, seed=1)
    padded, padding_mask = make_inputs([11, 23], 6, seed=2)
    padded[0, :11] = x[0]
    ref = model(x, return_attention=True)
    out = model(padded, padding_mask, return_attention=True)
    torch.testing.assert_close(out.logits[0], ref.logits[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(out.pooled_concepts[0], ref.pooled_concepts[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(out.concepts[0, :11], ref.concepts[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(out.window_logits[0, :11], ref.window_logits[0], atol=1e-5, rtol=0)
    assert (out.concepts[0, 11:] == 0).all() and (out.window_logits[0, 11:] == 0).all()
    fast_out = model(padded, padding_mask)
    torch.testing.assert_close(fast_out.logits, out.logits, atol=1e-5, rtol=0)
    with torch.no_grad():   # inference-only kernels (e.g. the native multi-head attention) behave the same
        torch.testing.assert_close(model(padded, padding_mask).logits, out.logits, atol=1e-5, rtol=0)
    for maps, ref_maps in zip(out.attentions, ref.attentions):
        torch.testing.assert_close(maps[0, :, :11, :11], ref_maps[0], atol=1e-5, rtol=0)
        assert (maps[0, :, :, 11:] == 0).all()           # padded keys get no weight
        torch.testing.assert_close(maps.sum(-1), torch.ones_like(maps.sum(-1)), atol=1e-5, rtol=0)


def test_fully_padded_video_gives_no_nan():
    for impl in ("fast", "explicit"):
        model = make_model(num_concepts=5, num_layers=2, attention_impl=impl).train()
        x, padding_mask = make_inputs([0, 4, 0], 5, num_windows=6)
        out = model(x, padding_mask, return_attention=impl == "explicit")
        (out.logits.sum() + out.pooled_concepts.sum()).backward()
        assert all(torch.isfinite(v).all() for v in output_tensors(out).values())
        assert all(torch.isfinite(p.grad).all() for p in model.parameters())
        assert (out.logits[[0, 2]] == 0).all() and (out.concepts[[0, 2]] == 0).all()


def test_key_validity_keeps_softmax_rows_non_empty():
    padding_mask = torch.tensor([[False, True, True], [True, True, True]])
    assert key_validity(padding_mask).tolist() == [[True, False, False], [True, True, True]]


# --------------------------------------------------------------------------- isolation

@pytest.mark.parametrize("impl", ["fast", "explicit"])
def test_attention_of_a_concept_depends_only_on_its_normalised_input(impl):
    """Change the normalised input of every concept but c: c's attention output and map stay the same."""
    model = make_model(num_concepts=8, head_dim=2)
    attention, concept, others = model.encoder.layers[0].attention, 3, [0, 1, 2, 4, 5, 6, 7]
    _, padding_mask = make_inputs([14, 9], 8)
    generator = torch.Generator().manual_seed(0)
    y = torch.randn(2, 14, 8, generator=generator)
    changed = y.clone()
    changed[..., others] += torch.randn(2, 14, 7, generator=generator)
    key_valid = key_validity(padding_mask)
    out, maps = attention(y, key_valid, impl=impl, return_attention=impl == "explicit")
    out_changed, maps_changed = attention(changed, key_valid, impl=impl, return_attention=impl == "explicit")
    torch.testing.assert_close(out_changed[..., concept], out[..., concept], atol=1e-6, rtol=0)
    assert (out_changed[..., others] - out[..., others]).abs().min() > 0   # every other concept did change
    if impl == "explicit":
        torch.testing.assert_close(maps_changed[:, concept], maps[:, concept], atol=1e-6, rtol=0)


def test_maps_in_every_layer_depend_only_on_the_concepts_normalised_input():
    """Inside the full model: perturb a layer's LayerNorm output except for concept c (forward hook)."""
    model = make_model(num_concepts=8, num_layers=2)
    x, padding_mask = make_inputs([14, 9], 8)
    concept, others = 3, [0, 1, 2, 4, 5, 6, 7]
    clean = model(x, padding_mask, return_attention=True).attentions
    for layer_index, layer in enumerate(model.encoder.layers):
        noise = torch.randn(2, 14, 8, generator=torch.Generator().manual_seed(layer_index))
        noise[..., concept] = 0.0
        handle = layer.norm_attention.register_forward_hook(lambda module, args, output: output + noise)
        perturbed = model(x, padding_mask, return_attention=True).attentions
        handle.remove()
        torch.testing.assert_close(perturbed[layer_index][:, concept], clean[layer_index][:, concept],
                                   atol=1e-6, rtol=0)
        assert (perturbed[layer_index][:, others] - clean[layer_index][:, others]).abs().max() > 1e-3


def channel_swap(x: torch.Tensor, first: int, second: int) -> torch.Tensor:
    """x' such that x' + PE equals x + PE with two concept channels swapped (LayerNorm statistics unchanged)."""
    pe = sinusoidal_encoding(x.shape[1], x.shape[2])
    h = x + pe
    h[..., [first, second]] = h[..., [second, first]]
    return h - pe


def test_space_time_variant_gives_up_isolation():
    """Swapping two other concepts leaves concept 0's normalised input, hence its MoTIF map, unchanged;
    in MoTIF-ST the concept mixer lets the swap reach concept 0's map."""
    x, padding_mask = make_inputs([12], 8)
    swapped = channel_swap(x, 4, 6)
    for variant, isolated in (("motif", True), ("space_time", False)):
        model = make_model(num_concepts=8, variant=variant)
        maps, maps_swapped = (model(v, padding_mask, return_attention=True).attentions[0][:, 0] for v in (x, swapped))
        assert torch.allclose(maps, maps_swapped, atol=1e-6) == isolated


# --------------------------------------------------------------------------- attention interventions

def interventions_setup():
    model = make_model(num_concepts=6, num_layers=1)
    x, padding_mask = make_inputs([10, 7], 6, seed=3)
    clean = model(x, padding_mask, return_attention=True)
    return model, x, padding_mask, clean


def edited_maps(model, x, padding_mask, intervention: AttentionIntervention) -> torch.Tensor:
    """The first layer's maps [B, C, T, T] under an attention intervention."""
    return model(x, padding_mask, return_attention=True, attention_intervention=intervention).attentions[0]


def test_identity_attention_makes_each_window_attend_to_itself():
    model, x, padding_mask, clean = interventions_setup()
    maps = edited_maps(model, x, padding_mask, AttentionIntervention("identity", [1, 4]))
    for b, length in enumerate([10, 7]):
        assert torch.equal(maps[b, [1, 4], :length], torch.eye(10)[:length].expand(2, length, 10))
    torch.testing.assert_close(maps[:, [0, 2, 3, 5]], clean.attentions[0][:, [0, 2, 3, 5]])
    # With identity maps, the attention output of a concept is its own value at each window.
    attention = model.encoder.layers[0].attention
    y = model.encoder.layers[0].norm_attention(x + sinusoidal_encoding(10, 6))
    _, _, value = attention.project(y)
    out_att, _ = attention(y, key_validity(padding_mask), intervention=AttentionIntervention("identity"),
                           query_valid=~padding_mask)
    torch.testing.assert_close(out_att[0], value[0].mean(-1).T)


def test_uniform_attention_respects_padding():
    model, x, padding_mask, _ = interventions_setup()
    maps = edited_maps(model, x, padding_mask, AttentionIntervention("uniform"))
    torch.testing.assert_close(maps[1, :, :7, :7], torch.full((6, 7, 7), 1 / 7))
    assert (maps[1, :, :, 7:] == 0).all()
    torch.testing.assert_close(maps[0, :, :, :], torch.full((6, 10, 10), 1 / 10))


def test_reverse_attention_flips_valid_keys():
    model, x, padding_mask, clean = interventions_setup()
    maps = edited_maps(model, x, padding_mask, AttentionIntervention("reverse", [2]))
    ref = clean.attentions[0]
    torch.testing.assert_close(maps[1, 2, :7, :7], ref[1, 2, :7, :7].flip(-1))
    torch.testing.assert_close(maps[0, 2], ref[0, 2].flip(-1))
    assert (maps[1, 2, :, 7:] == 0).all()
    torch.testing.assert_close(maps[:, 3], ref[:, 3])


def test_shuffle_attention_permutes_valid_keys_reproducibly():
    model, x, padding_mask, clean = interventions_setup()
    maps, again, other = (edited_maps(model, x, padding_mask, AttentionIntervention("shuffle", seed=seed))
                          for seed in (0, 0, 1))
    assert torch.equal(maps, again) and not torch.equal(maps, other)
    ref = clean.attentions[0]
    assert (maps[1, :, :, 7:] == 0).all()
    torch.testing.assert_close(maps[1, :, :7, :7].sort(-1).values, ref[1, :, :7, :7].sort(-1).values)
    assert not torch.allclose(maps[1, :, :7, :7], ref[1, :, :7, :7])
    permutation = AttentionIntervention("shuffle").key_permutation(~padding_mask)
    assert sorted(permutation[1, :7].tolist()) == list(range(7)) and permutation[1, 7:].tolist() == [7, 8, 9]


def test_key_permutation_is_the_valid_positions_reversed_or_shuffled():
    """Any key mask (holes too, one video without any valid key): reverse maps the i-th valid position to
    the (L-1-i)-th; shuffle permutes the valid positions, seeded, one draw per video; padding stays put."""
    key_valid = torch.tensor([[True] * 6, [True, False, True, True, False, True], [False] * 6,
                              [True, True, True, False, False, False]])
    reverse = AttentionIntervention("reverse").key_permutation(key_valid)
    for b, valid in enumerate(key_valid):
        positions = valid.nonzero().squeeze(1)
        expected = torch.arange(6)
        expected[positions] = positions.flip(0)
        assert torch.equal(reverse[b], expected)
    shuffles = [AttentionIntervention("shuffle", seed=seed).key_permutation(key_valid.repeat(20, 1))
                for seed in (0, 0, 1)]
    assert torch.equal(shuffles[0], shuffles[1]) and not torch.equal(shuffles[0], shuffles[2])
    for b, row in enumerate(shuffles[0]):
        valid = key_valid[b % 4]
        assert sorted(row[valid].tolist()) == valid.nonzero().squeeze(1).tolist()
        assert torch.equal(row[~valid], torch.arange(6)[~valid])
    assert len({tuple(row.tolist()) for row in shuffles[0][::4]}) > 10      # a fresh draw for every video


@pytest.mark.parametrize("variant", ["motif", "space_time", "evidence"])
@pytest.mark.parametrize("kind", ATTENTION_KINDS)
@pytest.mark.parametrize("dtype, tolerance", [(torch.float64, 1e-10), (torch.float32, 1e-6)])
def test_interventions_on_the_fast_path_equal_the_explicit_maps(variant, kind, dtype, tolerance):
    """The fast path edits the outputs of the chosen concepts alone; it gives the numbers of the explicit
    [B, C, T, T] maps with the chosen maps replaced, for all concepts and for a subset, d = 1 and d = 2,
    two layers, padding and a fully padded video."""
    layers = 1 if variant == "evidence" else 2
    x, padding_mask = make_inputs([17, 9, 1, 0], 10, dtype=dtype)
    for head_dim in (1, 2):
        fast = make_model(num_concepts=10, num_classes=5, num_layers=layers, head_dim=head_dim, variant=variant,
                          dtype=dtype)
        explicit = make_model(num_concepts=10, num_classes=5, num_layers=layers, head_dim=head_dim, variant=variant,
                              dtype=dtype, attention_impl="explicit")
        explicit.load_state_dict(fast.state_dict())
        clean = fast(x, padding_mask).logits
        for concepts in (None, [1, 4, 7]):
            intervention = AttentionIntervention(kind, concepts, seed=3)
            out_fast = fast(x, padding_mask, attention_intervention=intervention)
            out_explicit = explicit(x, padding_mask, attention_intervention=intervention)
            for name, value in output_tensors(out_fast).items():
                torch.testing.assert_close(value, output_tensors(out_explicit)[name], atol=tolerance, rtol=0,
                                           msg=f"{name}, d={head_dim}, concepts {concepts}")
            assert (out_fast.logits - clean).abs().max() > 1e-4


@pytest.mark.parametrize("variant", ["motif", "space_time", "evidence"])
@pytest.mark.parametrize("impl", ["fast", "explicit"])
def test_alternative_selections_in_one_pass_equal_separate_runs(variant, impl):
    """selection [S, B, C] gives S·B rows, selection-major, each equal to a run with that selection alone
    ([B, C], a different set of concepts per video), on both paths; the maps have S·B rows too."""
    layers = 1 if variant == "evidence" else 2
    model = make_model(num_concepts=10, num_classes=5, num_layers=layers, head_dim=2, variant=variant,
                       attention_impl=impl)
    x, padding_mask = make_inputs([17, 9, 1, 0], 10)
    selection = torch.rand(3, 4, 10, generator=torch.Generator().manual_seed(0)) < 0.3
    for kind in ATTENTION_KINDS:
        together = model(x, padding_mask, return_attention=True,
                         attention_intervention=AttentionIntervention(kind, seed=5, selection=selection))
        assert together.logits.shape == (12, 5) and together.attentions[0].shape[0] == 12
        for s in range(3):
            # the shuffle of selection s draws rows s·B .. s·B + B - 1 of one permutation draw for S·B rows
            alone = model(x, padding_mask, attention_intervention=AttentionIntervention(kind, seed=5,
                                                                                      selection=selection[s]))
            if kind != "shuffle" or s == 0:
                for name, value in output_tensors(alone).items():
                    torch.testing.assert_close(output_tensors(together)[name][4 * s:4 * s + 4], value, atol=1e-6,
                                               rtol=1e-6, msg=f"{kind}, selection {s}, {name}")
        for b in range(4):      # selection [B, C] per video = the same concepts for that video alone
            length = max(int((~padding_mask[b]).sum()), 1)
            if kind != "shuffle" and length > 1:
                single = model(x[b:b + 1, :length], attention_intervention=AttentionIntervention(
                    kind, concepts=selection[1, b].nonzero().squeeze(1).tolist()))
                torch.testing.assert_close(together.logits[4 + b], single.logits[0], atol=1e-5, rtol=1e-5)


def test_attention_intervention_selection_errors_name_the_shapes():
    model = make_model(num_concepts=6)
    x, padding_mask = make_inputs([5, 3], 6)
    with pytest.raises(ValueError, match=r"must be bool \[B, C\] or \[S, B, C\] with B = 2, C = 6"):
        model(x, padding_mask,
              attention_intervention=AttentionIntervention("uniform", selection=torch.ones(2, 5).bool()))
    with pytest.raises(ValueError, match=r"input must have B = 3 videos, got 2"):
        model(x, padding_mask, attention_intervention=AttentionIntervention("uniform",
                                                                            selection=torch.ones(4, 3, 6).bool()))
    with pytest.raises(ValueError, match="either concepts"):
        AttentionIntervention("uniform", concepts=[1], selection=torch.ones(2, 6).bool())
    with pytest.raises(ValueError, match="bool"):
        AttentionIntervention("uniform", selection=torch.ones(2, 6))


def test_attention_intervention_changes_logits_and_rejects_full_variant():
    model, x, padding_mask, clean = interventions_setup()
    out = model(x, padding_mask, attention_intervention=AttentionIntervention("uniform"))
    assert (out.logits - clean.logits).abs().max() > 1e-4
    with pytest.raises(ValueError, match="full"):
        make_model(variant="full")(x, padding_mask, attention_intervention=AttentionIntervention("identity"))
    with pytest.raises(ValueError, match="kind"):
        AttentionIntervention("sideways")


# --------------------------------------------------------------------------- concept interventions

def test_zeroing_a_concept_removes_its_relevance():
    model, x, padding_mask, clean = interventions_setup()
    out = model(x, padding_mask, concept_intervention=ConceptIntervention("zero", concepts=[2]))
    assert (out.concepts[..., 2] == 0).all()
    torch.testing.assert_close(out.concepts[..., [0, 1, 3, 4, 5]], clean.concepts[..., [0, 1, 3, 4, 5]])
    explanation = explain(model, out, padding_mask)
    assert (explanation.relevance[..., 2] == 0).all() and (explanation.global_importance[:, 2] == 0).all()
    assert explanation.residual.abs().max() < 1e-5               # the logits were re-pooled
    torch.testing.assert_close(out.logits, model.readout(out.concepts, padding_mask).logits)


def test_set_windows_cells_and_mask():
    model, x, padding_mask, clean = interventions_setup()
    mask = torch.zeros(2, 10, 6, dtype=torch.bool)
    mask[1, 0, 5] = True
    edit = ConceptIntervention("set", windows=[8], cells=[(1, 0), (2, 3)], mask=mask, value=2.5)
    out = model(x, padding_mask, concept_intervention=edit)
    expected = clean.concepts.clone()
    expected[0, 8] = 2.5                     # window 8 exists only in video 0 (video 1 has 7 windows)
    expected[:, 1, 0] = expected[:, 2, 3] = 2.5
    expected[1, 0, 5] = 2.5
    torch.testing.assert_close(out.concepts, expected)
    assert (out.concepts[1, 7:] == 0).all()
    torch.testing.assert_close(edit.apply(clean.concepts, padding_mask), expected)   # padded windows stay 0


def test_noise_is_seeded_and_local():
    model, x, padding_mask, clean = interventions_setup()
    run = lambda seed: model(x, padding_mask, concept_intervention=ConceptIntervention(  # noqa: E731
        "noise", concepts=[1], std=0.5, seed=seed)).concepts
    noisy, again, other = run(7), run(7), run(8)
    assert torch.equal(noisy, again) and not torch.equal(noisy, other)
    delta = noisy - model(x, padding_mask).concepts
    assert (delta[..., [0, 2, 3, 4, 5]] == 0).all() and (delta[1, 7:] == 0).all()
    assert 0.2 < delta[0, :, 1].std() < 1.0


def test_concept_intervention_rejects_bad_indices():
    model, x, padding_mask, _ = interventions_setup()
    with pytest.raises(IndexError, match="concepts.*6 concepts"):
        model(x, padding_mask, concept_intervention=ConceptIntervention("zero", concepts=[6]))
    with pytest.raises(IndexError, match="windows"):
        model(x, padding_mask, concept_intervention=ConceptIntervention("zero", windows=[-1]))
    with pytest.raises(ValueError, match="mode"):
        ConceptIntervention("scale")


# --------------------------------------------------------------------------- classifier, variants, errors

def test_classifier_is_a_module_kept_non_negative_by_projection():
    model = make_model()
    assert isinstance(model.classifier, NonNegativeLinear) and isinstance(model.classifier, torch.nn.Module)
    assert (model.classifier.weight >= 0).all()
    optimiser = torch.optim.SGD(model.parameters(), lr=10.0)
    x, padding_mask = make_inputs([5, 3], 6)
    model(x, padding_mask).logits.sum().backward()    # pushes every weight down
    optimiser.step()
    assert (model.classifier.weight < 0).any() and (model.classifier.bias < 0).any()
    model.clamp_classifier_()
    assert (model.classifier.weight >= 0).all() and (model.classifier.bias < 0).any()


def test_attention_heads_of_full_variant():
    assert [attention_heads(c) for c in (16, 12, 9, 10, 7, 200)] == [8, 6, 3, 2, 1, 8]
    assert make_model(num_concepts=12, variant="full").encoder.layers[0].num_heads == 6


def test_bad_configuration_and_inputs_are_named():
    with pytest.raises(ValueError, match="variant"):
        TemporalConceptBottleneck(4, 2, variant="spatial")
    with pytest.raises(ValueError, match="attention_impl"):
        TemporalConceptBottleneck(4, 2, attention_impl="flash")
    with pytest.raises(ValueError, match="tau"):
        TemporalConceptBottleneck(4, 2, tau=0.0)
    model = make_model(num_concepts=4)
    with pytest.raises(ValueError, match="num_concepts"):
        model(torch.randn(2, 5, 3))
    with pytest.raises(ValueError, match="padding_mask"):
        model(torch.randn(2, 5, 4), torch.zeros(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="padding_mask"):
        model(torch.randn(2, 5, 4), torch.zeros(2, 5))


def test_attentions_returned_only_when_asked():
    model = make_model(num_layers=3)
    x, padding_mask = make_inputs([6, 4], 6)
    assert model(x, padding_mask).attentions is None
    maps = model(x, padding_mask, return_attention=True).attentions
    assert len(maps) == 3 and all(m.shape == (2, 6, 6, 6) for m in maps)


# --------------------------------------------------------------------------- order sensitivity

def pad_videos(videos: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = [v.shape[0] for v in videos]
    x = torch.zeros(len(videos), max(lengths), videos[0].shape[1])
    for i, v in enumerate(videos):
        x[i, :v.shape[0]] = v
    return x, torch.arange(max(lengths))[None, :] >= torch.tensor(lengths)[:, None]


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return (logits.argmax(-1) == labels).float().mean().item()


def test_time_order_sensitivity_on_mirrored_pairs():
    """All classes come in time-mirrored pairs: the bottleneck learns them, a mean-pooled linear model
    (order-blind) stays near chance within a pair, and shuffling test windows breaks the bottleneck."""
    task = make_order_task("pairs", num_videos=360, feature_dim=256, num_concepts=16, min_windows=16, max_windows=32,
                           seed=0)
    inputs, _, _ = task.standardised_activations()
    train, test = task.indices("train"), task.indices("test")
    x_train, mask_train = pad_videos([inputs[i] for i in train])
    x_test, mask_test = pad_videos([inputs[i] for i in test])
    y_train, y_test = task.labels[train], task.labels[test]

    torch.manual_seed(0)
    model = TemporalConceptBottleneck(16, len(task.class_names))
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-2)
    generator = torch.Generator().manual_seed(0)
    for _ in range(60):
        model.train()
        for batch in torch.randperm(len(train), generator=generator).split(32):
            loss = F.cross_entropy(model(x_train[batch], mask_train[batch]).logits, y_train[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            model.clamp_classifier_()
    model.eval()
    with torch.no_grad():
        model_accuracy = accuracy(model(x_test, mask_test).logits, y_test)
        shuffled = x_test.clone()
        for i, length in enumerate((~mask_test).sum(1).tolist()):
            shuffled[i, :length] = x_test[i, torch.randperm(length, generator=generator)]
        shuffled_accuracy = accuracy(model(shuffled, mask_test).logits, y_test)

    def time_mean(x, mask):
        return (x * (~mask)[..., None]).sum(1) / (~mask).sum(1, keepdim=True)

    linear = torch.nn.Linear(16, len(task.class_names))
    linear_optimiser = torch.optim.AdamW(linear.parameters(), lr=1e-2)
    mean_train, mean_test = time_mean(x_train, mask_train), time_mean(x_test, mask_test)
    for _ in range(500):
        linear_loss = F.cross_entropy(linear(mean_train), y_train)
        linear_optimiser.zero_grad()
        linear_loss.backward()
        linear_optimiser.step()
    with torch.no_grad():
        mean_accuracy = accuracy(linear(mean_test), y_test)

    assert model_accuracy >= 0.95, model_accuracy
    assert mean_accuracy <= 0.65, mean_accuracy
    assert shuffled_accuracy <= model_accuracy - 0.25, (shuffled_accuracy, model_accuracy)

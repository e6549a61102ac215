"""optim.l1_mode=proximal: λ1·Σ|W| as a soft-threshold after each Adam step (exact zeros, never W < 0)
instead of a term of the loss."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from motif.config import ConfigError, load_config
from motif.model.heads import NonNegativeLinear
from motif.sequences.sequence import SequenceBatch
from motif.training.experiment import model_kwargs_of
from motif.training.module import MotifModule, adam_step_sizes

REPO = Path(__file__).resolve().parents[1]
C, K, LR, L1, SPARSITY = 6, 4, 3e-3, 0.5, 0.1

pytestmark = pytest.mark.usefixtures("single_thread")


def module(l1_mode: str, weight_decay: float = 0.0, l1_weight: float = L1) -> MotifModule:
    cfg = load_config(REPO / "configs" / "synthetic.yaml",
                      [f"optim.l1_mode={l1_mode}", f"optim.l1_weight={l1_weight}", f"optim.lr={LR}",
                       f"optim.weight_decay={weight_decay}", f"optim.sparsity_weight={SPARSITY}", "model.dropout=0"])
    torch.manual_seed(0)
    out = MotifModule(model_kwargs_of(cfg, C, K), dict(cfg.optim), seed=0)
    out.model.set_input_statistics(torch.full((C,), 0.2), torch.full((C,), 0.05))
    return out


def batch(seed: int) -> SequenceBatch:
    """8 videos of up to 10 windows; class k shows concept k more strongly."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, K, (8,), generator=generator)
    concepts = torch.randn(8, 10, C, generator=generator) + 2 * F.one_hot(labels, C)[:, None, :]
    padding_mask = torch.arange(10)[None] >= torch.randint(3, 11, (8, 1), generator=generator)
    return SequenceBatch(concepts, padding_mask, labels, [f"v{i}" for i in range(8)])


def train_steps(m: MotifModule, steps: int) -> torch.optim.Optimizer:
    optimizer = m.configure_optimizers()
    for step in range(steps):
        optimizer.zero_grad()
        data = batch(step)
        m._loss(data, m(data))["loss"].backward()
        m.optimizer_step(0, step, optimizer)
    return optimizer


def test_soft_threshold_gives_exact_zeros_and_never_a_negative_weight():
    layer = NonNegativeLinear(4, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.5, 0.125, 0.0, 0.375], [0.0625, 0.25, 1.0, 0.2]]))
    layer.soft_threshold_(torch.tensor(0.25))
    assert torch.equal(layer.weight, torch.tensor([[0.25, 0.0, 0.0, 0.125], [0.0, 0.0, 0.75, 0.0]]))
    with pytest.raises(ValueError, match=">= 0"):
        layer.soft_threshold_(torch.tensor(-0.1))


def test_adam_step_sizes_are_the_steps_adam_takes():
    """Adam moves each weight by −step size · m̂ (m̂ = m / (1 − β₁ᵗ)), for several steps of random gradients."""
    parameter = torch.nn.Parameter(torch.randn(3, 5))
    optimizer = torch.optim.AdamW([parameter], lr=0.01, weight_decay=0.0)
    with pytest.raises(ValueError, match="updated the parameter"):
        adam_step_sizes(optimizer, parameter)
    for step in range(1, 6):
        before = parameter.detach().clone()
        parameter.grad = torch.randn(3, 5) * step
        optimizer.step()
        first_moment = optimizer.state[parameter]["exp_avg"] / (1 - 0.9 ** step)
        expected = before - adam_step_sizes(optimizer, parameter) * first_moment
        torch.testing.assert_close(parameter.detach(), expected, rtol=1e-6, atol=1e-7)


def test_first_proximal_step_is_adam_then_soft_threshold():
    """After one step v̂ = g², so the step size is lr / (|g| + ε) and
    W₁ = max(0, W₀ − lr · (g + λ1) / (|g| + ε)): the L1 term is not in the gradient, only in the threshold."""
    m = module("proximal")
    start = m.model.classifier.weight.detach().clone()
    data = batch(0)
    losses = m._loss(data, m(data))
    expected_loss = losses["ce"] + SPARSITY * losses["sparsity"]
    assert float(losses["loss"].detach()) == pytest.approx(float(expected_loss.detach()), rel=1e-6)
    losses["loss"].backward()
    gradient = m.model.classifier.weight.grad.clone()
    m.optimizer_step(0, 0, torch.optim.AdamW(m.model.parameters(), lr=LR, weight_decay=0.0))
    expected = (start - LR * (gradient + L1) / (gradient.abs() + 1e-8)).clamp_min(0.0)
    torch.testing.assert_close(m.model.classifier.weight.detach(), expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
def test_proximal_training_reaches_exact_zeros_that_the_penalty_does_not(weight_decay):
    """Same data, same λ1: the penalty leaves small positive weights where the proximal step has exact zeros."""
    proximal, penalty = module("proximal", weight_decay, 5e-3), module("penalty", weight_decay, 5e-3)
    train_steps(proximal, 100)
    train_steps(penalty, 100)
    w_proximal, w_penalty = proximal.model.classifier.weight, penalty.model.classifier.weight
    assert (w_proximal >= 0).all() and (w_penalty >= 0).all()
    assert int((w_proximal == 0).sum()) > int((w_penalty == 0).sum())
    assert (w_proximal > 0).any()


def test_unknown_l1_mode_is_refused_with_the_key():
    with pytest.raises(ConfigError, match="optim.l1_mode"):
        load_config(REPO / "configs" / "synthetic.yaml", ["optim.l1_mode=lasso"])
    cfg = load_config(REPO / "configs" / "synthetic.yaml")
    with pytest.raises(ValueError, match="optim.l1_mode must be one of"):
        MotifModule(model_kwargs_of(cfg, C, K), {**dict(cfg.optim), "l1_mode": "lasso"})


def test_penalty_mode_keeps_the_l1_term_in_the_loss():
    m = module("penalty")
    data = batch(0)
    losses = m._loss(data, m(data))
    expected = losses["ce"] + L1 * losses["l1"] + SPARSITY * losses["sparsity"]
    assert float(losses["loss"].detach()) == pytest.approx(float(expected.detach()), rel=1e-6)

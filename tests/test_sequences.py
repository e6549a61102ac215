"""Padding collate, length-bucketed batches (single process and DDP shards), loss terms."""

import pytest
import torch

from motif.model import TemporalConceptBottleneck
from motif.sequences import ConceptSequence
from motif.sequences.batching import LengthBucketBatchSampler, ShardedEvalSampler, collate_sequences
from motif.training.module import class_weights_from_labels, motif_loss


def items(lengths, c=3):
    return [ConceptSequence(f"v{i}", torch.full((t, c), float(i)), i % 2, torch.zeros(t, 2)) for i, t in enumerate(lengths)]


def test_collate_pads_and_masks():
    batch = collate_sequences(items([2, 4]))
    assert batch.concepts.shape == (2, 4, 3)
    assert batch.padding_mask.tolist() == [[False, False, True, True], [False] * 4]
    assert torch.all(batch.concepts[0, 2:] == 0) and torch.all(batch.concepts[1] == 1)


@pytest.mark.parametrize("bucket", [True, False])
def test_bucket_sampler_covers_every_video_once(bucket):
    lengths = torch.randint(1, 200, (103,), generator=torch.Generator().manual_seed(0)).tolist()
    sampler = LengthBucketBatchSampler(lengths, 8, bucket=bucket, seed=1)
    for epoch in (0, 1):
        sampler.set_epoch(epoch)
        seen = sorted(i for b in sampler for i in b)
        assert seen == list(range(103)) and len(list(sampler)) == len(sampler)


def test_bucketing_reduces_padding():
    lengths = torch.randint(1, 500, (400,), generator=torch.Generator().manual_seed(0)).tolist()

    def padded(sampler):
        return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in sampler)

    assert padded(LengthBucketBatchSampler(lengths, 16, bucket=True)) < 0.2 * padded(
        LengthBucketBatchSampler(lengths, 16, bucket=False))


def test_ddp_shards_partition_each_global_batch():
    lengths = list(range(1, 38))
    global_batches = LengthBucketBatchSampler(lengths, 6, seed=3).global_batches()
    shards = [list(LengthBucketBatchSampler(lengths, 6, seed=3, rank=r, world_size=2)) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == len(global_batches)  # DDP needs equal step counts
    for g, a, b in zip(global_batches, *shards):
        assert set(a) | set(b) == set(g) and a and b
    evals = [list(ShardedEvalSampler(lengths, 4, rank=r, world_size=2)) for r in (0, 1)]
    flat = [i for shard in evals for b in shard for i in b]
    assert sorted(flat) == list(range(37))  # no repeats, no padding: exact metrics


def test_class_weights_and_loss_terms():
    w = class_weights_from_labels([0, 0, 0, 1, 2, 2], 4)
    assert w.tolist() == [1.0, 3.0, 1.5, 0.0]
    torch.manual_seed(0)
    model = TemporalConceptBottleneck(5, 3, dropout=0.0)
    batch = collate_sequences(items([3, 6], c=5))
    out = model(batch.concepts, batch.padding_mask)
    losses = motif_loss(out, batch.labels, batch.padding_mask, model.classifier.weight, class_weights=None,
                        label_smoothing=0.1, l1_weight=0.5, sparsity_weight=2.0)
    valid = ~batch.padding_mask
    expected_sparsity = out.concepts[valid].mean()
    torch.testing.assert_close(losses["sparsity"], expected_sparsity)
    torch.testing.assert_close(losses["l1"], model.classifier.weight.abs().sum())
    torch.testing.assert_close(losses["loss"], losses["ce"] + 0.5 * losses["l1"] + 2.0 * losses["sparsity"])

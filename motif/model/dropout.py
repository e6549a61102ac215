"""Dropout whose masks are a function of per-sample keys, not of a random number stream.

Training on several processes (DDP) or resuming a killed run draws the same masks as one
uninterrupted process only if a sample's mask does not depend on what ran before or beside it. With
keys set (``dropout_keys``), sample b's mask over its own elements is

    keep[b, i] = u(key_b, module, call, i) >= p,   u = a 24-bit counter-based hash / 2^24 in [0, 1),

where i = t·R + r indexes the sample's elements in [T, R] order (R = product of the trailing sizes),
module is the KeyedDropout's position in the model and call counts its uses within one forward pass.
The mask therefore does not depend on the other samples of the batch, the padded length, the rank
layout or any global RNG state. Kept elements are scaled by 1 / (1 - p), as in ``nn.Dropout``.
Without keys a KeyedDropout is ``nn.Dropout`` (global RNG). The per-element hashes run on int32
tensors holding the same 32 bits (``hash32_int32``): half the memory traffic of int64, same masks.
"""

from __future__ import annotations

import math
import struct
import zlib
from contextlib import contextmanager
from typing import Iterator, Sequence

import torch
from torch import Tensor, nn

_MASK32 = 0xFFFFFFFF
HASH_CHUNK_ELEMENTS = 1 << 18   # elements hashed at once (all samples together)


def hash32(x: Tensor | int) -> Tensor | int:
    """A bijective 32-bit integer mix of int64 tensors (or Python ints) holding values in [0, 2^32); every
    product stays below 2^63, so nothing overflows."""
    x = x & _MASK32
    x = ((x ^ (x >> 16)) * 0x7FEB352D) & _MASK32
    x = ((x ^ (x >> 15)) * 0x2C1B3C6D) & _MASK32
    x = ((x ^ (x >> 16)) * 0x297A2D39) & _MASK32
    return x ^ (x >> 16)


def hash32_int32(x: Tensor) -> Tensor:
    """``hash32`` on int32 tensors that hold the 32 bits of its uint32 values: products wrap modulo 2^32
    as the masked int64 products do, and right shifts are made logical by masking the sign bits. Returns a
    new tensor (``hash32_int32_`` works in place)."""
    return hash32_int32_(x.clone())


def hash32_int32_(x: Tensor, scratch: Tensor | None = None) -> Tensor:
    """``hash32_int32`` computed in place in ``x`` and returned; ``scratch`` (x's shape and dtype, optional)
    is overwritten. No temporary tensors: a third of the time of the out-of-place expression."""
    scratch = torch.empty_like(x) if scratch is None else scratch
    for shift, multiplier in ((16, 0x7FEB352D), (15, 0x2C1B3C6D), (16, 0x297A2D39), (16, None)):
        torch.bitwise_right_shift(x, shift, out=scratch)
        x.bitwise_xor_(scratch.bitwise_and_((1 << (32 - shift)) - 1))
        if multiplier is not None:
            x.mul_(multiplier)
    return x


def as_int32_bits(x: Tensor) -> Tensor:
    """int64 values in [0, 2^32) -> int32 tensors holding the same 32 bits."""
    x = x & _MASK32
    return (x - ((x >> 31) << 32)).to(torch.int32)


def sample_keys(names: Sequence[str], *salts: int) -> Tensor:
    """int64 [B] keys from sample names (crc32, stable across processes) and salts such as (seed, epoch)."""
    keys = torch.tensor([zlib.crc32(name.encode()) for name in names], dtype=torch.int64)
    for salt in salts:
        keys = hash32(keys ^ hash32(torch.tensor(int(salt) & _MASK32, dtype=torch.int64)))
    return keys


class KeyedDropout(nn.Dropout):
    """``nn.Dropout`` that, while ``dropout_keys`` has set per-sample keys, draws sample b's mask from
    (keys[b], this module, this call) alone. Input [B, T, ...]."""

    def __init__(self, p: float = 0.5):
        super().__init__(p)
        self.keys: Tensor | None = None
        self.salt = 0
        self.calls = 0

    def forward(self, x: Tensor) -> Tensor:
        if self.keys is None or not self.training or self.p == 0.0:
            return super().forward(x)
        if x.shape[0] != self.keys.shape[0]:
            raise ValueError(f"dropout keys are set for {self.keys.shape[0]} samples, the input has {x.shape[0]}")
        elements = x[0].numel()
        if elements >= 2 ** 31:
            raise ValueError(f"KeyedDropout: {elements} elements per sample; the element index must fit 31 bits")
        # the call's salt is hashed on the host: no scalar tensor is copied to the device on every call
        stream = hash32(self.keys.to(x.device) ^ hash32(self.salt * 65536 + self.calls))
        self.calls += 1
        salted, stream = as_int32_bits(hash32(stream + 0x9E3779B9))[:, None], as_int32_bits(stream)[:, None]
        # u = (bits >> 8) / 2^24 >= p (in float32) <=> the 24-bit integer (bits >> 8) >= ceil(float32(p)·2^24)
        threshold = math.ceil(struct.unpack("f", struct.pack("f", self.p))[0] * (1 << 24))
        keep = torch.empty(x.shape[0], elements, dtype=torch.bool, device=x.device)
        step = max(1, HASH_CHUNK_ELEMENTS // x.shape[0])   # the int32 scratch stays small on long videos
        for start in range(0, elements, step):
            stop = min(start + step, elements)
            bits = torch.arange(start, stop, device=x.device, dtype=torch.int32)[None, :] ^ stream
            scratch = torch.empty_like(bits)
            hash32_int32_(hash32_int32_(bits, scratch).bitwise_xor_(salted), scratch)
            torch.ge(torch.bitwise_right_shift(bits, 8, out=scratch).bitwise_and_(0xFFFFFF), threshold,
                     out=keep[:, start:stop])
        return x.mul(keep.view_as(x)).div_(1.0 - self.p)


@contextmanager
def dropout_keys(model: nn.Module, keys: Tensor) -> Iterator[None]:
    """Within the block, every KeyedDropout of ``model`` draws keyed masks (keys int64 [B]).

    Raises ValueError if the model holds a plain ``nn.Dropout`` with p > 0 (its masks would come from
    the global RNG and break the guarantees above)."""
    keyed = []
    for name, module in model.named_modules():
        if isinstance(module, KeyedDropout):
            keyed.append(module)
        elif isinstance(module, nn.Dropout) and module.p > 0:
            raise ValueError(f"module '{name}' is a plain nn.Dropout; use motif.model.dropout.KeyedDropout so that "
                             "its masks do not depend on the process layout or a resumed RNG stream")
    for salt, module in enumerate(keyed):
        module.keys, module.salt, module.calls = keys, salt, 0
    try:
        yield
    finally:
        for module in keyed:
            module.keys = None


"""Typed errors of the backbone layer."""

from __future__ import annotations

from motif.errors import MotifError


class BackboneError(MotifError, RuntimeError):
    """A backbone could not be built; the message names the model or weights and the fix."""


class UnknownModelError(BackboneError):
    """The model name is neither an open_clip config nor a registered custom config."""


class WeightsUnavailableError(BackboneError):
    """The requested weights are not on this machine and cannot be downloaded now."""

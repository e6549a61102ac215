"""The error of the synthetic world."""

from motif.errors import MotifError


class WorldError(MotifError, ValueError):
    """A world folder or setting is unusable; the message names the file or key and the fix."""

"""The error of the synthetic world."""


class WorldError(ValueError):
    """A world folder or setting is unusable; the message names the file or key and the fix."""

"""The error of concept discovery (a server, an answer or the data that cannot give a concept bank)."""

from motif.errors import MotifError


class DiscoveryError(MotifError, RuntimeError):
    """Discovery cannot go on; the message names the setting, file or endpoint and what to do."""

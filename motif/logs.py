"""Logging set-up for the command-line tools: motif's own messages at INFO, other libraries' at WARNING."""

import logging


def configure_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("motif").setLevel(level)

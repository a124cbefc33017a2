"""Keeping library chatter off the user's terminal: exporters, quantizers and optimizers log and warn a lot
(deprecations, tracer warnings, fusion attempts); none of it is for the user, whose stderr carries our errors."""

from __future__ import annotations

import contextlib
import logging
import warnings
from typing import Iterator


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence Python logging below ERROR and all warnings inside the block; restores the previous state."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)

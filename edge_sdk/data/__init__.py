"""Data the SDK ships: the general-domain calibration corpus used for pruning scores and label-free recovery."""

from .batches import length_grouped, text_batches
from .calibration import CALIBRATION_CORPUS, load_calibration_texts

__all__ = ["CALIBRATION_CORPUS", "length_grouped", "load_calibration_texts", "text_batches"]

"""Data the SDK ships: the general-domain corpora for calibration and pruning scores, and for label-free recovery."""

from .batches import length_grouped, text_batches
from .calibration import CALIBRATION_CORPUS, RECOVERY_CORPUS, load_calibration_texts

__all__ = ["CALIBRATION_CORPUS", "RECOVERY_CORPUS", "length_grouped", "load_calibration_texts", "text_batches"]

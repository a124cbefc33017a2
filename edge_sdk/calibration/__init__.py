"""The calibrate stage: measure the cost model's efficiencies on a device (microbenchmarks through each runtime) or
fit them to published results, save them as a Calibration artifact, and apply the newest matching one when planning.
"""

from .store import (apply_calibration, calibrated, calibrations_dir, find_calibration, find_for, load_calibration,
                    local_fingerprint, save_calibration)

__all__ = ["apply_calibration", "calibrated", "calibrations_dir", "find_calibration", "find_for", "load_calibration",
           "local_fingerprint", "save_calibration"]

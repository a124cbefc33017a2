"""Device profiles: schema, loading, aliases, and the live `host` profile (host.py)."""

from .loader import ProfileRegistry, load_profile_file, load_registry
from ..schemas.profile import ComputeUnit, DeviceClass, DeviceProfile, Runtime

__all__ = ["ComputeUnit", "DeviceClass", "DeviceProfile", "ProfileRegistry", "Runtime", "load_profile_file",
           "load_registry"]

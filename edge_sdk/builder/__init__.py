"""The build stage: Plan(s) → compressed, exported, quality-checked Bundle."""

from .pipeline import DEFAULT_MAX_QUALITY_DROP, BuildOptions, build

__all__ = ["DEFAULT_MAX_QUALITY_DROP", "BuildOptions", "build"]

"""The build stage: Plan → compressed, exported, quality-checked Bundle."""

from .pipeline import BuildResult, build

__all__ = ["BuildResult", "build"]

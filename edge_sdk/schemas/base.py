"""The one base every artifact schema derives from: unknown fields are errors, never silently dropped.

A typo in a hand-edited plan or profile (`max_step: 10`) must fail with the field's name instead of being ignored.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

"""Every artifact of the pipeline, as pydantic models on one strict base (`base.Strict`).

    ModelSpec ─plan→ Plan/PlanSet ─build→ Manifest (Bundle) ─deploy→ Release ─bench→ BenchResult ─report→ CompatReport

Schemas import only each other (and pydantic): every stage may import them, they import no stage.
"""

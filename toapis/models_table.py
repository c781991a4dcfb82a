"""The catalog's models as a Markdown table, for docs/operators.md (kept in step by a test): what each model
offers, so that an operator can choose `TOAPIS_MODELS` without reading the catalog.

`python -m toapis.models_table` prints it; paste it between the table's markers in docs/operators.md.
"""

from __future__ import annotations

from toapis import catalog

HEADER = (
    "| model | name | aspect ratios | resolutions (**default**) | n | reference images | prompt |",
    "|---|---|---|---|---|---|---|",
)


def _aspects(spec: catalog.ModelSpec) -> str:
    if spec.aspects == tuple(catalog.ASPECTS):
        return f"all {len(catalog.ASPECTS)}"
    return " ".join(spec.aspects)


def _resolutions(spec: catalog.ModelSpec) -> str:
    tiers = [catalog.RESOLUTIONS[tier].upper for tier in spec.resolutions]
    shown = [
        f"**{label}**" if tier == spec.default_resolution else label
        for tier, label in zip(spec.resolutions, tiers, strict=True)
    ]
    text = ", ".join(shown)
    return text + " (none sent)" if spec.placement is catalog.ResolutionPlacement.NONE else text


def _references(spec: catalog.ModelSpec) -> str:
    if not spec.takes_references:
        return "none"
    shape = catalog.describe_reference_shape(spec)
    return f"up to {spec.reference_limit}" + (f" ({shape})" if shape else "")


def row(spec: catalog.ModelSpec) -> str:
    """One model: id, name, aspects, resolutions, n, reference images (and any rule on their shape) and prompt
    length, as Imagine asks them."""
    cells = (
        f"`{spec.id}`",
        spec.name,
        _aspects(spec),
        _resolutions(spec),
        catalog.describe_n(spec),
        _references(spec),
        f"{spec.prompt_max:,}",
    )
    return "| " + " | ".join(cells) + " |"


def models_table() -> str:
    """Every catalogued model, in the catalog's order."""
    return "\n".join((*HEADER, *(row(spec) for spec in catalog.MODELS.values())))


if __name__ == "__main__":
    print(models_table())

"""Export the JSON Schemas of the boundary documents (``schemas/NAME.schema.json``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from schemas.documents import DOCUMENTS

SCHEMA_DIR = Path(__file__).resolve().parent


def export_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema (draft 2020-12, as pydantic writes it) of each document, by name."""
    return {name: model.model_json_schema(by_alias=True) for name, model in DOCUMENTS.items()}


def write_schemas(folder: Path = SCHEMA_DIR) -> list[Path]:
    """Write ``NAME.schema.json`` for every document into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, schema in export_schemas().items():
        path = folder / f"{name}.schema.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        paths.append(path)
    return paths

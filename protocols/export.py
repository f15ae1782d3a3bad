"""Write the JSON Schema of every message to a directory (``python -m protocols.export docs/protocol``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from protocols.messages import PROTOCOL_VERSION, json_schemas


def export(target: Path) -> list[Path]:
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, schema in sorted(json_schemas().items()):
        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "x-protocol-version": PROTOCOL_VERSION,
            **schema,
        }
        path = target / f"{kind}.schema.json"
        path.write_text(json.dumps(schema, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for p in export(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/protocol")):
        print(p)

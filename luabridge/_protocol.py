"""The framing between the host and its worker processes: one JSON object per line, each way."""

from __future__ import annotations

import json
from typing import Any


def encode_message(message: dict[str, Any]) -> bytes:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


def decode_message(line: bytes) -> dict[str, Any]:
    return json.loads(line)

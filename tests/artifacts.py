"""Editing a model artifact's metadata in tests: older or damaged artifacts made from new ones."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from typing import Any


def rewrite_meta(blob: bytes, edit: Callable[[dict[str, Any]], None]) -> bytes:
    """The artifact ``blob`` with its ``meta.json`` changed in place by ``edit``."""
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    meta = json.loads(members["meta.json"])
    edit(meta)
    members["meta.json"] = json.dumps(meta).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out.getvalue()

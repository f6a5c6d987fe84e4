"""Schemathesis checks of our own, loaded by `st run` through SCHEMATHESIS_HOOKS.

`no_internal_errors`: no 5xx other than the documented 503 outages, and no GraphQL error
whose code is INTERNAL or missing (every error the API means to give carries a stable
code; an uncoded one is an exception that escaped the error hierarchy).
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis


@schemathesis.check
def no_internal_errors(ctx: Any, response: Any, case: Any) -> bool | None:
    if response.status_code >= 500 and response.status_code != 503:
        raise AssertionError(f"HTTP {response.status_code}: {response.text[:300]}")
    try:
        payload = json.loads(response.content)
    except ValueError:
        return None
    if not isinstance(payload, dict):
        return None
    for error in payload.get("errors") or ():
        code = (error.get("extensions") or {}).get("code")
        if code in (None, "INTERNAL"):
            raise AssertionError(f"GraphQL error with code {code}: {error.get('message')!r}")
    return None

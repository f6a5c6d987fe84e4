"""Every answer the test suite gets from /api/v1, checked against /api/v1/openapi.json.

    httpx.AsyncClient(..., event_hooks=OPENAPI_HOOKS)

The status must be listed for the path and method, the Content-Type must be the documented
one, required headers must be there, and a JSON body must match the documented schema, read
strictly: an object schema that does not say otherwise admits no undocumented field (the
published document leaves answers open to additive fields; the suite keeps it complete).
A path outside the document must answer 404, a method outside it 405 (or the gate's
401/402/429/503), all `{"error": …}`; a path with a trailing slash may be redirected (307)
to itself without it.
A mismatch raises `OpenAPIMismatch`, which fails the test that made the request.
"""

from __future__ import annotations

import copy
import re
from functools import cache
from typing import Any

import httpx
import orjson
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from compat_rest.openapi import PREFIX, document

_URI = "urn:pixelwand:openapi"
# The gate answers before routing, so a path or method outside the document may get these.
_GATE = (401, 402, 429, 503)


class OpenAPIMismatch(AssertionError):
    pass


def _strict(node: Any) -> Any:
    """Close every object schema that has properties and says nothing about others."""
    if isinstance(node, dict):
        out = {k: _strict(v) for k, v in node.items()}
        if isinstance(out.get("properties"), dict) and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [_strict(v) for v in node]
    return node


class Document:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = _strict(copy.deepcopy(doc))
        resource = Resource.from_contents(self.doc, default_specification=DRAFT202012)
        self.registry: Registry = Registry().with_resource(_URI, resource)
        self.templates = [
            (re.compile("^" + re.sub(r"\{[^}/]+\}", "[^/]+", path) + "$"), path)
            for path in self.doc["paths"]
        ]
        self._validators: dict[str, Draft202012Validator] = {}

    def template(self, path: str) -> str | None:
        for pattern, template in self.templates:
            if pattern.match(path):
                return template
        return None

    def validator(self, pointer: str) -> Draft202012Validator:
        if pointer not in self._validators:
            schema = {"$ref": f"{_URI}#{pointer}"}
            self._validators[pointer] = Draft202012Validator(schema, registry=self.registry)
        return self._validators[pointer]

    def _resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            target: Any = self.doc
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node = target
        return node

    def problems(
        self, method: str, path: str, status: int, headers: httpx.Headers, body: bytes | None
    ) -> list[str]:
        """What is wrong with this answer; `body` is None when it was not read (a stream)."""
        template = self.template(path)
        operation = self.doc["paths"].get(template, {}).get(method.lower()) if template else None
        if operation is None:
            if status == 307 and path.endswith("/") and _slash_redirect(path, headers):
                return []  # the router's `/x/` → `/x` (a public page typed with a slash)
            expected = 404 if template is None else 405
            if status not in (expected, *_GATE):
                return [f"not in the document: expected {expected}, got {status}"]
            return self._body("/components/schemas/Error", body)
        answer = operation["responses"].get(str(status))
        if answer is None:
            listed = ", ".join(operation["responses"])
            return [f"status {status} not documented for {method} {template} ({listed})"]
        out = []
        for name, header in answer.get("headers", {}).items():
            header = self._resolve(header)
            value = headers.get(name)
            if value is None:
                if header.get("required"):
                    out.append(f"header {name} missing")
            elif header.get("schema", {}).get("type") == "integer" and not value.isdigit():
                out.append(f"header {name}: {value!r} is not an integer")
        content = answer.get("content")
        if not content:
            return out
        media_type = headers.get("content-type", "").split(";")[0].strip()
        if media_type not in content:
            return [*out, f"Content-Type {media_type!r}, documented: {', '.join(content)}"]
        if media_type != "application/json":
            return out
        escaped = template.replace("~", "~0").replace("/", "~1")  # type: ignore[union-attr]
        pointer = f"/paths/{escaped}/{method.lower()}/responses/{status}"
        pointer += "/content/application~1json/schema"
        return out + self._body(pointer, body)

    def _body(self, pointer: str, body: bytes | None) -> list[str]:
        if body is None:
            return []
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError:
            return [f"body is not JSON: {body[:200]!r}"]
        return [
            f"body{''.join(f'[{p!r}]' for p in e.absolute_path)}: {e.message}"
            for e in self.validator(pointer).iter_errors(value)
        ][:5]


def _slash_redirect(path: str, headers: httpx.Headers) -> bool:
    return httpx.URL(headers.get("location", "")).path == path.rstrip("/")


@cache
def api_document() -> Document:
    return Document(document())


async def check_response(response: httpx.Response) -> None:
    """An httpx response hook: raise OpenAPIMismatch when an /api/v1 answer is undocumented."""
    request = response.request
    path = request.url.path
    if not path.startswith(PREFIX + "/") or request.method in ("OPTIONS", "HEAD"):
        return
    # JSON answers are read here (httpx keeps the bytes for the test); others may be streams.
    is_json = response.headers.get("content-type", "").startswith("application/json")
    body = await response.aread() if is_json else None
    problems = api_document().problems(
        request.method, path, response.status_code, response.headers, body
    )
    if problems:
        raise OpenAPIMismatch(
            f"{request.method} {request.url} → {response.status_code} disagrees with "
            f"/api/v1/openapi.json: " + "; ".join(problems)
        )


OPENAPI_HOOKS: dict[str, list[Any]] = {"response": [check_response]}

"""Schemathesis against a live server on every backend: REST from /api/v1/openapi.json,
GraphQL from introspection.

    make fuzz                      # these tests only, PIXELWAND_FUZZ_EXAMPLES=100, random seed
    make fuzz FUZZ_EXAMPLES=500    # more
    .venv/bin/pytest -m fuzz       # what CI runs inside `make test` (few examples, fixed seed)

Each backend gets a server of its own (`pixelwand serve`, a database of its own), an
ENTERPRISE organization made for the run with its rps raised through the environment (so
the answers are not just 429s), and a few real assets, a collection and a preset whose ids
the fuzzers use most of the time instead of random strings (schemathesis dictionaries), so
cases reach past the 404s. Checks: REST — no 5xx, every status, header, Content-Type and
body as the document says; GraphQL — no 5xx but the documented 503, no error whose code is
INTERNAL or missing (tests/support/fuzz_checks.py). Figures: docs/hardening.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Backend, fresh_database
from tests.helpers import make_image, make_mp4, make_mp4_head
from tests.support.live_server import ROOT, LiveServer

pytestmark = pytest.mark.fuzz

EXAMPLES = int(os.environ.get("PIXELWAND_FUZZ_EXAMPLES", "10"))
SEED = os.environ.get("PIXELWAND_FUZZ_SEED", "1")  # "random": a new seed each run
REST_CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_headers_conformance,response_schema_conformance"
)
GRAPHQL_CHECKS = "no_internal_errors,response_schema_conformance"

# Strings that broke this service or its kind before (issue 11): past column lengths, NUL
# and other control characters, LIKE wildcards, non-ASCII digits, markup. The GraphQL
# schema states no lengths, so without these its fuzzer only sends short strings.
HOSTILE = [
    "a" * 201,
    "a" * 5000,
    "é" * 65,
    "a\u0000b",
    "\u0000",
    "\t\r\n",
    " ",
    "%_",
    "1_0",
    "\u0663",
    "a,,b, ,c",
    "<html><script>alert(1)</script>",
    "../../etc/passwd",
    "\u202eevil",
]


# posterAt values that reach a frame (the seeded video lasts 1 s), its edges and malformed ones.
POSTER_AT = ["0", "0.5", "1", "25%", "100%", "0%", "1.000001", "2", "101%", "-1", "1e0", ""]

# (operation, schemathesis failure code) pairs tolerated while their fix is pending. Empty:
# every failure the fuzzers find fails the test.
KNOWN_FAILURES: set[tuple[str, str]] = set()


@dataclass
class Target:
    server: LiveServer
    key: str
    tmp: Path
    ids: dict[str, list[str]] = field(default_factory=dict)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


# --- a server per backend, with something in it ------------------------------------------


@pytest.fixture(scope="module")
async def database_url(
    backend: Backend, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    if backend.name == "sqlite-local":
        yield f"sqlite://{tmp_path_factory.mktemp('fuzz-db')}/pixelwand.db"
        return
    async with fresh_database(backend.database_url, "pixelwand_fuzz") as url:
        yield url


@pytest.fixture(scope="module")
def target(
    backend: Backend, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    tmp = tmp_path_factory.mktemp(f"fuzz-{backend.name}")
    storage = f"local:{tmp}/storage" if backend.is_local else backend.storage_url
    env = {
        "PIXELWAND_DATA_DIR": str(tmp / "data"),
        "PIXELWAND_DATABASE_URL": database_url,
        "PIXELWAND_STORAGE_URL": storage,
        "PIXELWAND_RATE_LIMIT_URL": backend.rate_limit_url or "",
        "PIXELWAND_SECRET_KEY": f"fuzz-{uuid.uuid4().hex}",
        "PIXELWAND_SWEEP_INTERVAL_SECONDS": "0",
        # Fuzzing is a burst of requests on one key: lift its plan's rate out of the way.
        "PIXELWAND_PLAN_ENTERPRISE_RPS": "100000",
        # The seeded webhooks point at a public address: nothing is ever sent to it.
        "PIXELWAND_WEBHOOK_WORKER": "0",
    }
    with LiveServer(env, tmp) as server:
        org, key = server.org_and_key("ENTERPRISE", "read,write,admin")
        t = Target(server, key, tmp)
        with httpx.Client(base_url=server.base, headers=t.auth, timeout=30) as http:
            _seed(t, http, org)
        yield t
        _assert_still_serving(t)


def _upload(http: httpx.Client, data: bytes, name: str, mime: str) -> str:
    declared = {"originalName": name, "mimeType": mime, "size": len(data)}
    r = http.post("/api/v1/assets", json={"mode": "presign", **declared})
    assert r.status_code == 200, r.text
    ticket = r.json()
    put = httpx.put(ticket["uploadUrl"], content=data, headers=ticket["headers"], timeout=30)
    assert put.status_code in (200, 201, 204), put.text
    body = {"mode": "finalize", **declared, "storageKey": ticket["storageKey"], "tags": ["fuzz"]}
    r = http.post("/api/v1/assets", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _seed(t: Target, http: httpx.Client, org: str) -> None:
    files = [
        (make_image(64, 48, ".jpg"), "photo.jpg", "image/jpeg"),
        (make_image(40, 30, ".png"), "diagram.png", "image/png"),
        (make_image(32, 32, ".webp"), "icon.webp", "image/webp"),
        (make_mp4_head(), "clip.mp4", "video/mp4"),  # undecodable
    ]
    if _has_pyav():  # a video that decodes, so posters and their parameters are reached
        video = make_mp4(seconds=1.0, width=64, height=48, fps=5, gop=5)
        files.append((video, "real.mp4", "video/mp4"))
    t.ids["assets"] = [_upload(http, *f) for f in files]
    # Real hashes (and a miss), so contentHash filters find something.
    hashes = ["sha256:" + hashlib.sha256(data).hexdigest() for data, _, _ in files]
    t.ids["content_hashes"] = [*hashes, ",".join(hashes), "sha256:" + "0" * 64]
    # DELETE gets assets of its own, so the others stay for the rest of the run.
    t.ids["doomed"] = [
        _upload(http, make_image(8, 8, ".jpg"), f"d{i}.jpg", "image/jpeg") for i in range(3)
    ]
    r = http.post("/api/v1/collections", json={"name": "fuzz"})
    t.ids["collections"] = [r.json()["id"]]
    r = http.post(
        "/api/v1/export-presets", json={"name": "thumb", "format": "WEBP", "maxWidth": 32}
    )
    t.ids["presets"] = [r.json()["name"]]
    # revokeApiKey revokes these, never the key the fuzzer sends.
    for _ in range(2):
        t.server.cli("keys", "create", "--org", org, "--scopes", "read")
    listing = t.server.cli("keys", "list", "--org", org).splitlines()[1:]
    t.ids["keys"] = [row.split()[0] for row in listing if row.split()[2] == "read"]
    # Webhooks and multipart uploads, so that their routes and mutations get past the 404s.
    t.ids["webhooks"] = []
    for path in ("/a", "/b"):
        r = http.post(
            "/api/v1/webhooks",
            json={"url": f"https://93.184.215.14{path}", "events": ["asset.finalized"]},
        )
        t.ids["webhooks"].append(r.json()["id"])
    t.ids["uploads"] = []
    for name in ("a.mp4", "b.mp4", "c.png"):
        mime = "image/png" if name.endswith(".png") else "video/mp4"
        r = http.post(
            "/api/v1/assets",
            json={
                "mode": "multipart-start",
                "originalName": name,
                "mimeType": mime,
                "size": 9 << 20,
            },
        )
        t.ids["uploads"].append(r.json()["uploadId"])


def _has_pyav() -> bool:
    import importlib.util

    return importlib.util.find_spec("av") is not None


def _assert_still_serving(t: Target) -> None:
    """The run meant something only if the key stayed valid to the end."""
    r = httpx.post(
        t.server.base + "/graphql", json={"query": "{ viewer { plan } }"}, headers=t.auth
    )
    assert r.status_code == 200 and "errors" not in r.json(), r.text


# --- running schemathesis ------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, dict):
        return (
            "{ " + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
        )
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(value)


def _bind(dictionary: str, probability: float) -> dict[str, Any]:
    """Draw the parameter from a dictionary of real values `probability` of the time."""
    return {"dictionary": dictionary, "probability": probability}


def _only(name: str, argument: str, binding: dict[str, Any]) -> dict[str, Any]:
    """A binding for one GraphQL field's argument."""
    return {"include-name": name, "parameters": {f"{name}.{argument}": binding}}


def _config(
    t: Target, bindings: dict[str, dict[str, Any]], per_operation: list[dict[str, Any]]
) -> Path:
    lines = []
    dictionaries = {
        **t.ids,
        "hostile": HOSTILE,
        "preset_names": t.ids["presets"] + HOSTILE,
        "poster_at": POSTER_AT,
    }
    for name, values in dictionaries.items():
        lines += [f"[dictionaries.{name}]", f"values = {_toml_value(values)}", ""]
    lines.append("[parameters]")
    lines += [f"{json.dumps(key)} = {_toml_value(value)}" for key, value in bindings.items()]
    for op in per_operation:
        lines += ["", "[[operations]]"] + [f"{k} = {_toml_value(v)}" for k, v in op.items()]
    path = t.tmp / f"schemathesis-{uuid.uuid4().hex[:6]}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _run(
    t: Target, location: str, name: str, checks: str, config: Path, *extra: str
) -> dict[str, Any]:
    report = t.tmp / f"{name}.json"
    args = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run", location,
        "-H", f"Authorization: Bearer {t.key}",
        "--checks", checks,
        "--max-examples", str(EXAMPLES),
        "--report", "json", "--report-json-path", str(report),
        "--no-color", *extra,
    ]  # fmt: skip
    if SEED != "random":
        args += ["--seed", SEED]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.support.fuzz_checks", "PYTHONPATH": str(ROOT)}
    # cwd: schemathesis keeps a cache of past failures in .schemathesis/ there.
    done = subprocess.run(
        args, cwd=t.tmp, env=env, capture_output=True, text=True, timeout=max(1800, 10 * EXAMPLES)
    )
    assert report.exists(), done.stdout + done.stderr
    result = json.loads(report.read_text())
    figures = {
        "operations": result["operations"]["tested"],
        "examples": result["test_cases"]["generated"],
        "failures": result["test_cases"]["unique_failures"],
        "errors": len(result["errors"]),
        "seconds": round(result["running_time"], 1),
        "seed": result["seed"],
    }
    print(f"\nfuzz {name}: {figures}")
    summary = os.environ.get("PIXELWAND_FUZZ_SUMMARY")
    if summary:
        with open(summary, "a") as out:
            out.write(json.dumps({"run": name, **figures}) + "\n")
    found = {(op, f["code"]) for f in result["failures"] for op in f["operations"]}
    known = found & KNOWN_FAILURES
    if known:
        print(f"fuzz {name}: known failures still found (issue 11): {sorted(known)}")
    new = found - KNOWN_FAILURES
    assert not new and figures["errors"] == 0, (
        f"schemathesis found problems {sorted(new)} ({figures}):\n{done.stdout[-20000:]}\n"
        f"{done.stderr[-3000:]}\nserver log tail:\n{t.server.output()[-5000:]}"
    )
    return result


def test_rest_api_against_its_openapi_document(target: Target, backend: Backend) -> None:
    bindings = {
        "path.id": _bind("assets", 0.8),
        "query.collectionId": _bind("collections", 0.5),
        "query.parentId": _bind("collections", 0.3),
        "query.preset": _bind("preset_names", 0.5),
        "query.q": _bind("hostile", 0.2),
        "query.tags": _bind("hostile", 0.2),
        "query.name": _bind("hostile", 0.2),
        "body.name": _bind("hostile", 0.2),
        "body.tags[*]": _bind("hostile", 0.2),
        "body.collectionId": _bind("collections", 0.5),
        "body.parentId": _bind("collections", 0.5),
        "body.assetIds[*]": _bind("assets", 0.8),
        "body.uploadId": _bind("uploads", 0.8),
        "query.posterAt": _bind("poster_at", 0.6),
        "query.contentHash": _bind("content_hashes", 0.5),
    }
    deletes = {
        "include-method": "DELETE",
        "include-path-regex": "^/api/v1/assets/",
        "parameters": {"path.id": _bind("doomed", 0.8)},
    }
    webhooks = {
        "include-path-regex": "^/api/v1/webhooks/",
        "parameters": {"path.id": _bind("webhooks", 0.8)},
    }
    config = _config(target, bindings, [deletes, webhooks])
    result = _run(
        target,
        target.server.base + "/api/v1/openapi.json",
        f"rest-{backend.name}",
        REST_CHECKS,
        config,
        "--phases", "examples,coverage,fuzzing",
    )  # fmt: skip
    assert result["operations"]["tested"] >= 11


def test_graphql_api_through_introspection(target: Target, backend: Backend) -> None:
    bindings = {
        "*.*.id": _bind("assets", 0.7),
        "*.*.assetId": _bind("assets", 0.8),
        "*.*.collectionId": _bind("collections", 0.5),
        "*.*.parentId": _bind("collections", 0.5),
        "*.*.preset": _bind("preset_names", 0.5),
        "*.*.q": _bind("hostile", 0.2),
        "*.*.name": _bind("hostile", 0.2),
        "*.*.format": _bind("hostile", 0.2),
        "*.*.tags[*]": _bind("hostile", 0.2),
        "*.*.input.name": _bind("hostile", 0.2),
        "*.*.input.originalName": _bind("hostile", 0.2),
        "*.*.input.tags[*]": _bind("hostile", 0.2),
        "*.*.input.color": _bind("hostile", 0.2),
        "*.*.input.assetIds[*]": _bind("assets", 0.8),
        "*.*.input.collectionId": _bind("collections", 0.5),
        "*.*.input.parentId": _bind("collections", 0.5),
        "*.*.input.uploadId": _bind("uploads", 0.8),
        "*.*.webhookId": _bind("webhooks", 0.8),
        "*.*.posterAt": _bind("poster_at", 0.6),
        "*.*.contentHash[*]": _bind("content_hashes", 0.5),
    }
    per_operation = [
        _only("Mutation.deleteAsset", "id", _bind("doomed", 0.8)),
        _only("Mutation.revokeApiKey", "id", _bind("keys", 1.0)),
        *(
            _only(f"Mutation.{name}", "id", _bind("webhooks", 0.8))
            for name in ("updateWebhook", "deleteWebhook", "sendTestWebhook")
        ),
    ]
    config = _config(target, bindings, per_operation)
    result = _run(
        target, target.server.base + "/graphql", f"graphql-{backend.name}", GRAPHQL_CHECKS, config
    )
    assert result["operations"]["tested"] >= 15

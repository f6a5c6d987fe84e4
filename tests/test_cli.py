"""The `pixelwand` command line, run as an operator runs it: subprocesses in one environment."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ORG_ID = re.compile(r"^c[0-9a-z]{24}$")
API_KEY = re.compile(r"^ak_live_[A-Za-z0-9]{32,}$")
ROOT = Path(__file__).resolve().parent.parent


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIXELWAND_")}
    env.update(
        PIXELWAND_DATA_DIR=str(tmp),
        PIXELWAND_DATABASE_URL=f"sqlite://{tmp}/x.db",
        PIXELWAND_STORAGE_URL=f"local:{tmp}/storage",
        PIXELWAND_SECRET_KEY="cli-test-secret",
        PIXELWAND_SWEEP_INTERVAL_SECONDS="0",
    )
    return env


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pixelwand", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _ok(env: dict[str, str], *args: str) -> str:
    done = _cli(env, *args)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def _failed(env: dict[str, str], *args: str) -> str:
    done = _cli(env, *args)
    assert done.returncode != 0, (args, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    return done.stderr


def _keys_table(env: dict[str, str], org_id: str) -> dict[str, dict[str, str]]:
    """`keys list` rows by key id: {prefix, scopes, status, name}."""
    lines = _ok(env, "keys", "list", "--org", org_id).splitlines()
    assert lines and lines[0].split()[:4] == ["ID", "PREFIX", "SCOPES", "STATUS"], lines
    rows = {}
    for line in lines[1:]:
        key_id, prefix, scopes, status, *name = line.split()
        rows[key_id] = {
            "prefix": prefix,
            "scopes": scopes,
            "status": status,
            "name": " ".join(name),
        }
    return rows


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    environment = _env(tmp_path_factory.mktemp("cli"))
    _ok(environment, "migrate")
    return environment


@pytest.fixture(scope="module")
def org_id(env: dict[str, str]) -> str:
    out = _ok(env, "orgs", "create", "--name", "Acme", "--plan", "BUSINESS").strip()
    assert ORG_ID.match(out), out
    return out


# --- migrate, orgs, keys ----------------------------------------------------------------


def test_migrate_is_idempotent(tmp_path: Path) -> None:
    env = _env(tmp_path)
    _ok(env, "migrate")
    _ok(env, "migrate")
    assert (tmp_path / "x.db").exists()


def test_orgs_create_prints_the_id(org_id: str) -> None:
    assert ORG_ID.match(org_id)


def test_keys_create_list_revoke(env: dict[str, str], org_id: str) -> None:
    out = _ok(env, "keys", "create", "--org", org_id, "--scopes", "read,write", "--name", "ci")
    keys = [line for line in out.splitlines() if API_KEY.match(line.strip())]
    assert len(keys) == 1, out
    key = keys[0].strip()
    assert key == keys[0], "the key is printed alone on its line"

    rows = _keys_table(env, org_id)
    [(key_id, row)] = [(i, r) for i, r in rows.items() if key.startswith(r["prefix"])]
    assert ORG_ID.match(key_id)
    assert row == {
        "prefix": row["prefix"],
        "scopes": "read,write",
        "status": "active",
        "name": "ci",
    }
    assert key not in _ok(env, "keys", "list", "--org", org_id)  # the secret is shown once

    _ok(env, "keys", "revoke", key_id)
    assert _keys_table(env, org_id)[key_id]["status"] == "revoked"


def test_keys_revoke_unknown_key_fails(env: dict[str, str]) -> None:
    stderr = _failed(env, "keys", "revoke", "c" + "0" * 24)
    assert "not found" in stderr


def test_orgs_set_plan(env: dict[str, str], org_id: str) -> None:
    out = _ok(env, "orgs", "set-plan", org_id, "TEAM")
    assert "TEAM" in out


def test_bad_plan_is_refused_clearly(env: dict[str, str], org_id: str) -> None:
    for args in (
        ("orgs", "set-plan", org_id, "PLATINUM"),
        ("orgs", "create", "--name", "Bad", "--plan", "PLATINUM"),
    ):
        stderr = _failed(env, *args)
        assert "PLATINUM" in stderr and "plan" in stderr.lower(), stderr
        assert "ENTERPRISE" in stderr, "the message lists the valid plans"


def test_set_plan_of_unknown_org_fails(env: dict[str, str]) -> None:
    stderr = _failed(env, "orgs", "set-plan", "c" + "1" * 24, "TEAM")
    assert "not found" in stderr


def test_keys_create_for_unknown_org_fails(env: dict[str, str]) -> None:
    stderr = _failed(env, "keys", "create", "--org", "c" + "2" * 24, "--scopes", "read")
    assert "not found" in stderr
    assert "ak_live_" not in stderr


def test_keys_create_with_unknown_scope_fails(env: dict[str, str], org_id: str) -> None:
    stderr = _failed(env, "keys", "create", "--org", org_id, "--scopes", "read,root")
    assert "root" in stderr


def test_sweep_runs(env: dict[str, str]) -> None:
    out = _ok(env, "sweep")
    assert out.strip()


def test_export_schema_prints_the_sdl(tmp_path: Path) -> None:
    from schema import schema

    out = _ok(_env(tmp_path), "export-schema")
    assert out == schema.as_str() + "\n"
    assert "type Query" in out and "type Mutation" in out

    _ok(_env(tmp_path), "export-schema", "-o", str(tmp_path / "out.graphql"))
    assert (tmp_path / "out.graphql").read_text() == out


# --- serve ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(env: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    """Start `pixelwand serve` and wait until /healthz answers; (process, base URL).

    Its stdout goes to `log`, its stderr to `log` + ".err".
    """
    port = _free_port()
    with log.open("w") as out, _stderr_log(log).open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pixelwand", "serve", "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=err,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited with {proc.returncode}:\n{_output(log)}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            _stop(proc)
            raise AssertionError(f"serve did not answer /healthz within 20 s:\n{_output(log)}")
        time.sleep(0.2)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _stderr_log(log: Path) -> Path:
    return log.with_name(log.name + ".err")


def _output(log: Path) -> str:
    return f"--- stdout\n{log.read_text()}\n--- stderr\n{_stderr_log(log).read_text()}"


def _printed_keys(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if API_KEY.match(line)]


def test_serve_first_start_prints_an_admin_key_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = _env(data)

    first_log = tmp_path / "first.log"
    proc, base = _serve(env, first_log)
    try:
        keys = _printed_keys(first_log)
        assert len(keys) == 1, _output(first_log)
        r = httpx.get(
            f"{base}/api/v1/assets", headers={"Authorization": f"Bearer {keys[0]}"}, timeout=10
        )
        assert r.status_code == 200, r.text
        assert r.json() == {"items": [], "page": 1, "pageSize": 50, "total": 0, "totalPages": 0}

        r = httpx.post(
            f"{base}/graphql",
            json={"query": "{ viewer { plan scopes } }"},
            headers={"Authorization": f"Bearer {keys[0]}"},
            timeout=10,
        )
        assert r.status_code == 200, r.text
        assert r.json() == {
            "data": {"viewer": {"plan": "ENTERPRISE", "scopes": ["read", "write", "admin"]}}
        }
    finally:
        _stop(proc)

    second_log = tmp_path / "second.log"
    proc, base = _serve(env, second_log)
    try:
        assert _printed_keys(second_log) == [], _output(second_log)
        assert "ak_live_" not in _output(second_log)
        # The first key still works against the same data directory.
        r = httpx.get(
            f"{base}/api/v1/assets", headers={"Authorization": f"Bearer {keys[0]}"}, timeout=10
        )
        assert r.status_code == 200, r.text
    finally:
        _stop(proc)


def _status_within(url: str, key: str, expected: int, seconds: float) -> int:
    """Poll GET `url` with `key` until it answers `expected` or `seconds` pass; the last status."""
    deadline = time.monotonic() + seconds
    while True:
        status = httpx.get(url, headers={"Authorization": f"Bearer {key}"}, timeout=10).status_code
        if status == expected or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


def test_cli_changes_reach_a_running_server_within_a_second(tmp_path: Path) -> None:
    env = _env(tmp_path / "data")
    log = tmp_path / "serve.log"
    proc, base = _serve(env, log)
    try:
        [admin_key] = _printed_keys(log)
        assets = f"{base}/api/v1/assets"
        r = httpx.post(
            f"{base}/graphql",
            json={"query": "{ viewer { organization { id } } }"},
            headers={"Authorization": f"Bearer {admin_key}"},
            timeout=10,
        )
        org_id = r.json()["data"]["viewer"]["organization"]["id"]
        key = _ok(env, "keys", "create", "--org", org_id, "--scopes", "read").strip()
        assert httpx.get(assets, headers={"Authorization": f"Bearer {key}"}).status_code == 200

        # A key is cached for at most a second: a plan change or a revocation made by
        # another process is seen within that second (a little slack for the poll).
        _ok(env, "orgs", "set-plan", org_id, "FREE")
        assert _status_within(assets, key, 402, 1.5) == 402
        _ok(env, "orgs", "set-plan", org_id, "ENTERPRISE")
        assert _status_within(assets, key, 200, 1.5) == 200

        [key_id] = [
            i for i, row in _keys_table(env, org_id).items() if key.startswith(row["prefix"])
        ]
        _ok(env, "keys", "revoke", key_id)
        assert _status_within(assets, key, 401, 1.5) == 401
        assert _status_within(assets, admin_key, 200, 0) == 200  # only that key
    finally:
        _stop(proc)

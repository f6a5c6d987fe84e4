"""`pixelwand` command line: serve, migrate, orgs, keys, sweep, export-schema on the server's
own database; upload, export, assets, collections and presets as an HTTP client of any
deployment (pixelwand/client/)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from pixelwand import db, logs
from pixelwand.config import ConfigError, Settings
from pixelwand.errors import PixelWandError, map_exceptions
from pixelwand.plans import Plan, parse_plan


def _with_db(settings: Settings, fn: Callable[[], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        await db.connect(settings.database_url)
        try:
            return await fn()
        finally:
            await db.disconnect()

    return asyncio.run(main())


# --- commands ---------------------------------------------------------------------------


def _announce(settings: Settings, message: str) -> None:
    """A line for the operator: printed, or with PIXELWAND_LOG_FORMAT=json a log record, so
    that every line a JSON server writes parses (the first-start key alone is printed)."""
    if settings.log_format == "json":
        logging.getLogger("pixelwand").info(message)
    else:
        print(message, flush=True)


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    async def main() -> None:
        try:
            await db.migrate(settings.database_url)
        finally:
            await db.disconnect()

    asyncio.run(main())
    _announce(settings, "migrations applied")
    return 0


async def bootstrap_first_start() -> str | None:
    """On an empty database: a default ENTERPRISE organization and an all-scope key."""
    from pixelwand.services import api_keys, organizations

    if await organizations.has_any():
        return None
    org = await organizations.create_org("Default", Plan.ENTERPRISE)
    _, plain = await api_keys.create_key(org.id, ["read", "write", "admin"], "first-start admin")
    return f"{org.id}\n{plain}"


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    host = args.host or settings.host
    port = args.port or settings.port
    # Workers build their own Settings from the environment: hand them the flags too.
    os.environ["PIXELWAND_HOST"] = host
    os.environ["PIXELWAND_PORT"] = str(port)
    if args.access_log:
        os.environ["PIXELWAND_ACCESS_LOG"] = "1"
    settings = Settings.from_env()
    _metrics_directory(settings)
    if not args.no_migrate:
        cmd_migrate(settings, args)
    created = _with_db(settings, bootstrap_first_start)
    if created:
        org_id, key = created.split("\n")
        print(f"First start: created organization 'Default' ({org_id}) on the ENTERPRISE plan.")
        print("Admin API key (shown once, store it now):")
        print(key, flush=True)
    base = settings.base_url()
    _announce(settings, f"Pixel Wand on {base}  (GraphQL: {base}/graphql)")
    uvicorn.run(
        "pixelwand.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=args.workers,
        loop="uvloop",
        # httptools, with a deadline for request headers (pixelwand/web/protocol.py).
        http="pixelwand.web.protocol:HeaderTimeoutProtocol",
        timeout_keep_alive=max(1, round(settings.keep_alive_timeout_seconds)),
        log_level=settings.log_level.lower(),
        log_config=logs.uvicorn_log_config(settings.log_level, settings.log_format),
        access_log=False,  # the app writes its own access log (pixelwand.access)
        proxy_headers=True,
    )
    return 0


def _metrics_directory(settings: Settings) -> None:
    """prometheus-client's multi-process mode: every worker writes its samples under one
    directory that /metrics adds up. Emptied here, before any worker starts (samples of a
    previous run would be added in). An operator's own PROMETHEUS_MULTIPROC_DIR wins."""
    import shutil

    # Not imported from pixelwand.metrics: prometheus-client picks its mode when imported,
    # so it must not be imported before the variable is set.
    name = "PROMETHEUS_MULTIPROC_DIR"
    directory = os.environ.get(name) or str(settings.data_dir / "metrics")
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory, exist_ok=True)
    os.environ[name] = directory


def cmd_orgs_create(settings: Settings, args: argparse.Namespace) -> int:
    from pixelwand.services import organizations

    org = _with_db(settings, lambda: organizations.create_org(args.name, parse_plan(args.plan)))
    print(org.id)
    return 0


def cmd_orgs_set_plan(settings: Settings, args: argparse.Namespace) -> int:
    from pixelwand.services import organizations

    _with_db(settings, lambda: organizations.set_plan(args.org_id, parse_plan(args.plan)))
    print(f"{args.org_id} is now on {parse_plan(args.plan).value}")
    return 0


def cmd_keys_create(settings: Settings, args: argparse.Namespace) -> int:
    from pixelwand.models import Organization
    from pixelwand.services import api_keys

    async def create() -> str:
        if not await Organization.filter(id=args.org).exists():
            raise PixelWandError(f"organization {args.org} not found")
        _, plain = await api_keys.create_key(args.org, args.scopes, args.name or "")
        return plain

    print(_with_db(settings, create))
    return 0


def cmd_keys_list(settings: Settings, args: argparse.Namespace) -> int:
    from pixelwand.services import api_keys

    keys = _with_db(settings, lambda: api_keys.list_keys(args.org))
    print(f"{'ID':<26} {'PREFIX':<13} {'SCOPES':<17} {'STATUS':<8} NAME")
    for k in keys:
        status = "revoked" if k.revoked_at else "active"
        print(f"{k.id:<26} {k.prefix:<13} {','.join(k.scopes):<17} {status:<8} {k.name}")
    return 0


def cmd_keys_revoke(settings: Settings, args: argparse.Namespace) -> int:
    from pixelwand.models import ApiKey
    from pixelwand.services import api_keys

    async def revoke() -> None:
        key = await ApiKey.filter(id=args.key_id).first()
        if key is None:
            raise PixelWandError(f"API key {args.key_id} not found")
        await api_keys.revoke_key(key.organization_id, key.id)

    _with_db(settings, revoke)
    print(f"revoked {args.key_id}")
    return 0


def cmd_sweep(settings: Settings, args: argparse.Namespace) -> int:
    from pixelwand.app import build_runtime
    from pixelwand.services.sweeper import sweep

    runtime = build_runtime(settings)

    async def run() -> Any:
        try:
            with map_exceptions():  # an outage is one line ("database unavailable"), exit 2
                return await sweep(
                    runtime.storage, upload_retention_seconds=settings.upload_retention_seconds
                )
        finally:
            await runtime.storage.close()

    report = _with_db(settings, run)
    if report.skipped_locked:
        print(
            "another process is sweeping; only temporary files reaped "
            f"({report.temp_files_removed})"
        )
    else:
        line = (
            f"removed {report.assets_removed} deleted assets and {report.uploads_removed} "
            f"stale uploads ({report.objects_deleted} objects); "
            f"{report.staged_removed} staged uploads, "
            f"{report.temp_files_removed} temporary files"
        )
        if report.multipart_aborted:
            line += f"; aborted {report.multipart_aborted} expired multipart uploads"
        print(line)
    return 0


def cmd_backfill(settings: Settings, args: argparse.Namespace) -> int:
    """Queue every asset finalized before facts existed, then work the queue to the end
    (alongside any running servers' workers: the leases keep them apart)."""
    from pixelwand.app import build_runtime
    from pixelwand.services import facts

    runtime = build_runtime(settings)

    async def run() -> int:
        worker = facts.FactsWorker(runtime)
        try:
            queued = await facts.enqueue_missing()
            total = await facts.pending_count()
            print(f"queued {queued} assets; {total} pending", flush=True)
            done = 0
            while True:
                finished = await worker.run_once()
                done += finished
                if finished:
                    print(f"filled {done}/{total}", flush=True)
                    continue
                left = await facts.pending_count()
                if not left:
                    return done
                await asyncio.sleep(1.0)  # others hold the leases left: wait for them
        finally:
            worker.close()
            await runtime.storage.close()
            if runtime.image_pool is not None:
                runtime.image_pool.close()

    done = _with_db(settings, run)
    print(f"done: {done} assets filled by this process")
    return 0


def cmd_export_schema(settings: Settings | None, args: argparse.Namespace) -> int:
    from schema import schema

    sdl = schema.as_str() + "\n"
    if args.output:
        with open(args.output, "w") as f:
            f.write(sdl)
    else:
        sys.stdout.write(sdl)
    return 0


# --- parser -----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pixelwand", description="Pixel Wand asset service")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the HTTP server (applies migrations first)")
    s.add_argument("--host", default=None, help="default PIXELWAND_HOST or 127.0.0.1")
    s.add_argument("--port", type=int, default=None, help="default PIXELWAND_PORT or 8000")
    s.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    s.add_argument("--no-migrate", action="store_true", help="do not apply migrations first")
    s.add_argument("--access-log", action="store_true", help="log every request")
    s.set_defaults(func=cmd_serve)

    sub.add_parser("migrate", help="apply pending database migrations").set_defaults(
        func=cmd_migrate
    )

    orgs = sub.add_parser("orgs", help="manage organizations").add_subparsers(
        dest="orgs_command", required=True
    )
    c = orgs.add_parser("create", help="create an organization; prints its id")
    c.add_argument("--name", required=True)
    c.add_argument("--plan", default="TEAM", help="FREE|TEAM|BUSINESS|ENTERPRISE")
    c.set_defaults(func=cmd_orgs_create)
    sp = orgs.add_parser("set-plan", help="change an organization's plan")
    sp.add_argument("org_id")
    sp.add_argument("plan", help="FREE|TEAM|BUSINESS|ENTERPRISE")
    sp.set_defaults(func=cmd_orgs_set_plan)

    keys = sub.add_parser("keys", help="manage API keys").add_subparsers(
        dest="keys_command", required=True
    )
    kc = keys.add_parser("create", help="create a key; prints it once")
    kc.add_argument("--org", required=True)
    kc.add_argument("--scopes", required=True, help="read,write[,admin]")
    kc.add_argument("--name", default="")
    kc.set_defaults(func=cmd_keys_create)
    kl = keys.add_parser("list", help="list an organization's keys")
    kl.add_argument("--org", required=True)
    kl.set_defaults(func=cmd_keys_list)
    kr = keys.add_parser("revoke", help="revoke a key by id")
    kr.add_argument("key_id")
    kr.set_defaults(func=cmd_keys_revoke)

    sub.add_parser("sweep", help="remove deleted assets' objects and stale uploads").set_defaults(
        func=cmd_sweep
    )
    sub.add_parser(
        "backfill", help="compute facts (hashes, placeholders, video facts) of older assets"
    ).set_defaults(func=cmd_backfill)
    es = sub.add_parser("export-schema", help="print the GraphQL SDL")
    es.add_argument("--output", "-o", default=None)
    es.set_defaults(func=cmd_export_schema)

    from pixelwand.client.commands import add_client_commands

    add_client_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if getattr(args, "client", False):  # no server settings: it talks to PIXELWAND_URL
        from pixelwand.client.commands import run_client_command

        return run_client_command(args)
    if args.func is cmd_export_schema:
        return cmd_export_schema(None, args)
    try:
        settings = Settings.from_env()
        logs.configure(settings.log_level, settings.log_format)
        return args.func(settings, args)
    except (ConfigError, ValueError, PixelWandError) as exc:
        print(f"pixelwand: {exc}", file=sys.stderr)
        return 2

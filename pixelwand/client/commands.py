"""The client's commands: argument parsing, progress bars, tables and JSON output."""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from pixelwand.client.api import Api, ClientError, Target, segment
from pixelwand.client.uploads import (
    MULTIPART_THRESHOLD,
    FileResult,
    LocalFile,
    Uploader,
    discover,
    existing_assets,
    sha256_of,
)

DEFAULT_URL = "http://127.0.0.1:8000"
EXPORT_BATCH = 500  # assets per archive: the API's limit

# Names, paths and the API's messages are data: `[...]` in them is shown, never read as
# rich markup (which dropped "[edited]" from "IMG [edited].jpg" and crashed on "[/b]").
out = Console(highlight=False, soft_wrap=True, markup=False)
err = Console(stderr=True, highlight=False, markup=False, soft_wrap=True)


def _target(args: argparse.Namespace) -> Target:
    url = (args.url or os.environ.get("PIXELWAND_URL") or DEFAULT_URL).strip()
    if not url.startswith(("http://", "https://")) or not httpx.URL(url).host:
        raise ClientError(f"the server's URL must start with http:// or https:// (got {url!r})")
    key = (args.api_key or os.environ.get("PIXELWAND_API_KEY") or "").strip()
    if not key:
        raise ClientError("no API key: set PIXELWAND_API_KEY or pass --api-key")
    odd = next((c for c in key if not "!" <= c <= "~"), None)  # printable ASCII only
    if odd is not None:
        raise ClientError(f"the API key contains {odd!r}, which no key holds: paste the whole key")
    return Target(url, key)


def _run(args: argparse.Namespace, body: Callable[[Api], Awaitable[int]]) -> int:
    async def main() -> int:
        api = Api(_target(args), concurrency=getattr(args, "concurrency", 4))
        try:
            return await body(api)
        finally:
            await api.close()

    return asyncio.run(main())


def _json_line(value: Any) -> None:
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


def _tags(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(n)


# --- upload -------------------------------------------------------------------------------


def cmd_upload(args: argparse.Namespace) -> int:
    return _run(args, lambda api: _upload(api, args))


async def _upload(api: Api, args: argparse.Namespace) -> int:
    concurrency = max(1, args.concurrency)
    paths, results = discover(args.paths)
    files: list[LocalFile] = []
    for p in paths:
        try:
            files.append(LocalFile(p, p.stat().st_size, result=FileResult(str(p))))
        except OSError as exc:
            results.append(FileResult(str(p), "failed", error=f"cannot read the file: {exc}"))
    await _check_key(api)
    collection_id = (
        await api.collection_id(args.collection, create=True) if args.collection else None
    )

    progress = Progress(
        TextColumn("{task.description}", style="bold", markup=False),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=args.json and not err.is_terminal,
        # Result lines go to stdout, not through the bar's terminal (stderr): redirected
        # stdout (`--json > results.jsonl`) got nothing, the lines went to the terminal.
        redirect_stdout=out.is_terminal,
    )
    with progress:
        hashing = progress.add_task("hashing", total=len(files))
        pool = asyncio.Semaphore(max(2, concurrency))

        async def hash_one(f: LocalFile) -> None:
            async with pool:
                try:
                    f.sha256 = await asyncio.to_thread(sha256_of, f.path)
                except OSError as exc:
                    assert f.result is not None
                    f.result.status, f.result.error = "failed", f"cannot read the file: {exc}"
            progress.advance(hashing)

        await asyncio.gather(*(hash_one(f) for f in files))
        progress.remove_task(hashing)
        readable = [f for f in files if f.sha256]
        try:
            known, supported = await existing_assets(api, sorted({f.sha256 for f in readable}))
        except ClientError as exc:
            if exc.status != 403:  # a write-only key may upload but not list
                raise
            known = {}
            err.print(f"note: {exc.message}: known content cannot be looked up; nothing is skipped")
        else:
            if not supported:
                err.print(
                    "note: this server cannot look assets up by contentHash; nothing is skipped"
                )

        # One upload per distinct content; the other paths with that content follow it.
        first_by_hash: dict[str, LocalFile] = {}
        followers: list[LocalFile] = []
        to_upload: list[LocalFile] = []
        for f in readable:
            assert f.result is not None
            if f.sha256 in known:
                f.result.status, f.result.asset_id = "skipped", known[f.sha256]
            elif f.sha256 in first_by_hash:
                followers.append(f)
            else:
                first_by_hash[f.sha256] = f
                to_upload.append(f)
        task = progress.add_task("uploading", total=sum(f.size for f in to_upload))
        done = [0]
        # The bar counts bytes; the files column shows how many files are finished.
        progress.update(task, description=f"uploading 0/{len(to_upload)}")

        def on_done(result: FileResult) -> None:
            done[0] += 1
            progress.update(task, description=f"uploading {done[0]}/{len(to_upload)}")
            if args.json:
                _json_line(result.as_json())

        uploader = Uploader(
            api,
            tags=_tags(args.tags),
            collection_id=collection_id,
            on_bytes=lambda n: progress.advance(task, n),
            on_done=on_done,
            multipart_threshold=max(1, args.multipart_threshold),
            part_concurrency=concurrency,
        )
        slots = asyncio.Semaphore(concurrency)

        async def upload_one(f: LocalFile) -> None:
            async with slots:
                await uploader.upload(f)

        await asyncio.gather(*(upload_one(f) for f in to_upload))

    for f in followers:
        assert f.result is not None
        first = first_by_hash[f.sha256].result
        assert first is not None
        if first.status == "failed":
            f.result.status, f.result.error = "failed", first.error
        else:
            f.result.status, f.result.asset_id = "skipped", first.asset_id
    final = results + [f.result for f in files if f.result is not None]
    if args.json:
        for r in final:
            if not any(r is f.result for f in to_upload):  # those were printed as they ended
                _json_line(r.as_json())
    else:
        _summary(final)
    return 1 if any(r.status == "failed" for r in final) else 0


async def _check_key(api: Api) -> None:
    """A wrong, revoked or FREE-plan key, or one without the `write` scope, is told at once,
    not after every file is read and hashed. An empty presign is that one request: the API
    checks the key (401/402), then its scope (403), and only then the body (400), so a 400
    means this key may upload, and nothing is created."""
    try:
        await api.call("POST", "/assets", json={})
    except ClientError as exc:
        if exc.status != 400:
            raise


def _summary(results: list[FileResult]) -> None:
    counts = {s: sum(r.status == s for r in results) for s in ("uploaded", "skipped", "failed")}
    failed = [r for r in results if r.status == "failed"]
    if failed:
        table = Table(title="Failed files", title_justify="left")
        table.add_column("file", overflow="fold")
        table.add_column("reason", overflow="fold")
        for r in failed:
            table.add_row(r.path, r.error or "")
        out.print(table)
    summary = Table(title="Upload summary", title_justify="left")
    for name in ("uploaded", "skipped", "failed", "total"):
        summary.add_column(name, justify="right")
    summary.add_row(*(str(counts[s]) for s in ("uploaded", "skipped", "failed")), str(len(results)))
    out.print(summary)


# --- export -------------------------------------------------------------------------------


def cmd_export(args: argparse.Namespace) -> int:
    return _run(args, lambda api: _export(api, args))


# What an export's config takes from a preset: every setting they share, so an export
# "with a preset" is that preset (gravity, perceptual target and AUTO's candidates too).
PRESET_CONFIG = (
    "format",
    "quality",
    "maxWidth",
    "maxHeight",
    "preserveAspect",
    "gravity",
    "perceptual",
    "formats",
)


async def _export_config(api: Api, args: argparse.Namespace) -> dict[str, Any] | None:
    inline = {
        "format": args.format,
        "quality": args.quality,
        "maxWidth": args.max_width,
        "maxHeight": args.max_height,
        "preserveAspect": False if args.crop else None,
    }
    if args.preset:
        if any(v is not None for v in inline.values()):
            raise ClientError("give either --preset or inline settings (--format …), not both")
        presets = (await api.call("GET", "/export-presets"))["presets"]
        preset = next((p for p in presets if p["name"] == args.preset), None)
        if preset is None:
            raise ClientError(f"preset {args.preset!r} not found", 404)
        inline = {k: preset.get(k) for k in PRESET_CONFIG}
        if preset["format"] == "AUTO":  # its quality is a fallback AUTO does not take
            inline["quality"] = None
    config = {k: v for k, v in inline.items() if v is not None}
    if args.rename:
        config["renameOnExport"] = True
    return config or None


def _check_output_folder(output: Path) -> None:
    """Refuse before asking the server for an archive that could not be written."""
    if output.is_dir() or not output.name:  # `-o .`, `-o ""` or `-o some/folder`
        raise ClientError(f"{output}: is a directory: name the archive, e.g. -o export.zip")
    folder = output.parent
    if not folder.is_dir():
        raise ClientError(f"{folder}: no such directory")
    if not os.access(folder, os.W_OK):
        raise ClientError(f"{folder}: not writable")


def archive_paths(output: Path, count: int) -> list[Path]:
    if count <= 1:
        return [output]
    stem, suffix = output.stem, output.suffix or ".zip"
    return [output.with_name(f"{stem}-{i}{suffix}") for i in range(1, count + 1)]


async def _download(
    api: Api, body: dict[str, Any], partial: Path, advance: Callable[[int], None]
) -> int:
    """Stream one archive to `partial`; answers its size."""
    size = 0
    async with api.stream_post("/exports", body) as response:
        f = await asyncio.to_thread(open, partial, "wb")
        try:
            async for chunk in response.aiter_bytes():
                await asyncio.to_thread(f.write, chunk)
                size += len(chunk)
                advance(len(chunk))
        finally:
            f.close()
    return size


async def _export(api: Api, args: argparse.Namespace) -> int:
    _check_output_folder(Path(args.output))
    if args.ids:
        ids = list(dict.fromkeys(args.ids))
    else:
        params: dict[str, Any] = {}
        if args.collection:
            params["collectionId"] = await api.collection_id(args.collection)
        if args.tag:
            params["tags"] = ",".join(args.tag)
        if not params:
            raise ClientError("name assets: IDS…, --collection NAME or --tag T")
        ids = [item["id"] async for item in api.pages(params)]
    if not ids:
        raise ClientError("no assets match")
    config = await _export_config(api, args)
    batches = [ids[i : i + EXPORT_BATCH] for i in range(0, len(ids), EXPORT_BATCH)]
    paths = archive_paths(Path(args.output), len(batches))
    written: list[dict[str, Any]] = []
    progress = Progress(
        TextColumn("{task.description}", style="bold", markup=False),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=args.json and not err.is_terminal,
    )
    with progress:
        for batch, path in zip(batches, paths, strict=True):
            task = progress.add_task(f"{path.name} ({len(batch)} assets)", total=None)
            partial = path.with_name(path.name + ".part")
            body: dict[str, Any] = {"assetIds": batch}
            if config:
                body["config"] = config
            advance = functools.partial(progress.advance, task)
            try:
                size = await _download(api, body, partial, advance)
                partial.replace(path)
            finally:
                partial.unlink(missing_ok=True)  # a failed or interrupted archive
            progress.update(task, total=size, completed=size)
            written.append({"path": str(path), "assets": len(batch), "bytes": size})
    if args.json:
        _json_line({"archives": written})
    else:
        for w in written:
            out.print(f"{w['path']}: {w['assets']} assets, {_size(w['bytes'])}")
    return 0


# --- assets, collections, presets ---------------------------------------------------------


def cmd_assets_list(args: argparse.Namespace) -> int:
    async def run(api: Api) -> int:
        params: dict[str, Any] = {"page": args.page, "pageSize": args.page_size}
        for key, value in (("q", args.q), ("type", args.type), ("tags", args.tags)):
            if value:
                params[key] = value
        if args.collection:
            params["collectionId"] = await api.collection_id(args.collection)
        body = await api.call("GET", "/assets", params=params)
        if args.json:
            _json_line(body)
            return 0
        table = Table(
            title=f"Assets: page {body['page']} of {body['totalPages']}, {body['total']} in all"
        )
        table.add_column("id", no_wrap=True)
        for col in ("name", "type", "size", "tags", "uploaded"):
            table.add_column(col, overflow="fold")
        for a in body["items"]:
            table.add_row(
                a["id"],
                a["name"],
                a["mediaType"],
                _size(a["size"]),
                ", ".join(a["tags"]),
                a["uploadedAt"],
            )
        out.print(table)
        return 0

    return _run(args, run)


def cmd_assets_show(args: argparse.Namespace) -> int:
    async def run(api: Api) -> int:
        asset = await api.call("GET", f"/assets/{segment(args.id)}")
        if args.json:
            _json_line(asset)
            return 0
        table = Table(show_header=False)
        table.add_column("field", style="bold")
        table.add_column("value", overflow="fold")
        for key, value in asset.items():
            table.add_row(key, ", ".join(value) if isinstance(value, list) else str(value))
        out.print(table)
        return 0

    return _run(args, run)


def cmd_assets_rm(args: argparse.Namespace) -> int:
    async def run(api: Api) -> int:
        failed = 0
        for asset_id in args.ids:
            try:
                body = await api.call("DELETE", f"/assets/{segment(asset_id)}")
                if args.json:
                    _json_line(body)
                else:
                    out.print(f"deleted {asset_id}")
            except ClientError as exc:
                failed += 1
                if args.json:
                    _json_line({"id": asset_id, "deleted": False, "error": exc.message})
                else:
                    err.print(f"{asset_id}: {exc.message}")
        return 1 if failed else 0

    return _run(args, run)


def cmd_collections_list(args: argparse.Namespace) -> int:
    async def run(api: Api) -> int:
        collections = (await api.call("GET", "/collections"))["collections"]
        if args.json:
            _json_line({"collections": collections})
            return 0
        by_id = {c["id"]: c for c in collections}

        def path(c: dict[str, Any]) -> str:
            names, seen = [c["name"]], {c["id"]}
            while c.get("parentId") in by_id and c["parentId"] not in seen:
                c = by_id[c["parentId"]]
                seen.add(c["id"])
                names.append(c["name"])
            return " / ".join(reversed(names))

        table = Table(title="Collections")
        table.add_column("id", no_wrap=True)
        for col in ("path", "color", "created"):
            table.add_column(col, overflow="fold")
        for c in sorted(collections, key=path):
            table.add_row(c["id"], path(c), c["color"], c["createdAt"])
        out.print(table)
        return 0

    return _run(args, run)


def cmd_collections_create(args: argparse.Namespace) -> int:
    async def run(api: Api) -> int:
        body: dict[str, Any] = {"name": args.name}
        if args.parent:
            body["parentId"] = await api.collection_id(args.parent)
        if args.color:
            body["color"] = args.color
        made = await api.call("POST", "/collections", json=body)
        if args.json:
            _json_line(made)
        else:
            out.print(f"{made['id']}  {made['name']}")
        return 0

    return _run(args, run)


def cmd_presets_list(args: argparse.Namespace) -> int:
    async def run(api: Api) -> int:
        presets = (await api.call("GET", "/export-presets"))["presets"]
        if args.json:
            _json_line({"presets": presets})
            return 0
        table = Table(title="Export presets")
        for col in ("name", "format", "quality", "maxWidth", "maxHeight", "aspect"):
            table.add_column(col)
        for p in presets:
            table.add_row(
                p["name"],
                p["format"],
                str(p["quality"]),
                str(p["maxWidth"] or "-"),
                str(p["maxHeight"] or "-"),
                "fit" if p["preserveAspect"] else "crop",
            )
        out.print(table)
        return 0

    return _run(args, run)


def cmd_presets_set(args: argparse.Namespace) -> int:
    async def run(api: Api) -> int:
        body: dict[str, Any] = {"name": args.name, "format": args.format}
        for key, value in (
            ("quality", args.quality),
            ("maxWidth", args.max_width),
            ("maxHeight", args.max_height),
        ):
            if value is not None:
                body[key] = value
        if args.crop:
            body["preserveAspect"] = False
        preset = await api.call("POST", "/export-presets", json=body)
        if args.json:
            _json_line(preset)
        else:
            out.print(f"saved preset {preset['name']}: {preset['format']} q{preset['quality']}")
        return 0

    return _run(args, run)


# --- parser -------------------------------------------------------------------------------


def add_client_commands(sub: Any) -> None:
    """Register the client's commands on the `pixelwand` parser's subcommands."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url", default=None, help=f"server (default PIXELWAND_URL or {DEFAULT_URL})"
    )
    common.add_argument("--api-key", default=None, help="default PIXELWAND_API_KEY")
    common.add_argument("--json", action="store_true", help="JSON output for scripts")

    def add(parent: Any, name: str, help: str, func: Callable[[argparse.Namespace], int]) -> Any:
        p = parent.add_parser(name, help=help, parents=[common])
        p.set_defaults(func=func, client=True)
        return p

    up = add(sub, "upload", "upload files and folders (client)", cmd_upload)
    up.add_argument("paths", nargs="+", metavar="PATH")
    up.add_argument("--collection", default=None, help="collection name (created if missing)")
    up.add_argument("--tags", default=None, help="comma-separated tags")
    up.add_argument("--concurrency", type=int, default=4, help="parallel uploads (default 4)")
    up.add_argument(
        "--multipart-threshold",
        type=int,
        default=MULTIPART_THRESHOLD,
        metavar="BYTES",
        help="files this big or bigger go in resumable parts (default 64 MiB)",
    )

    ex = add(sub, "export", "download assets as ZIP archives (client)", cmd_export)
    ex.add_argument("ids", nargs="*", metavar="ID")
    ex.add_argument("--collection", default=None)
    ex.add_argument("--tag", action="append", default=None, help="repeatable: every tag must match")
    ex.add_argument("--preset", default=None)
    ex.add_argument("--format", default=None, help="JPEG|PNG|WEBP|AVIF")
    ex.add_argument("--quality", type=int, default=None)
    ex.add_argument("--max-width", type=int, default=None)
    ex.add_argument("--max-height", type=int, default=None)
    ex.add_argument("--crop", action="store_true", help="exact size (preserveAspect false)")
    ex.add_argument("--rename", action="store_true", help="entries take the assets' names")
    ex.add_argument("-o", "--output", required=True, help="FILE.zip (FILE-1.zip … past 500)")

    assets = sub.add_parser("assets", help="list, show and delete assets (client)")
    asub = assets.add_subparsers(dest="assets_command", required=True)
    al = add(asub, "list", "a page of assets", cmd_assets_list)
    al.add_argument("--q", default=None)
    al.add_argument("--type", default=None, help="IMAGE|VIDEO")
    al.add_argument("--tags", default=None)
    al.add_argument("--collection", default=None)
    al.add_argument("--page", type=int, default=1)
    al.add_argument("--page-size", type=int, default=50)
    add(asub, "show", "one asset", cmd_assets_show).add_argument("id")
    add(asub, "rm", "delete assets", cmd_assets_rm).add_argument("ids", nargs="+", metavar="ID")

    cols = sub.add_parser("collections", help="list and create collections (client)")
    csub = cols.add_subparsers(dest="collections_command", required=True)
    add(csub, "list", "every collection", cmd_collections_list)
    cc = add(csub, "create", "create (or find) a collection", cmd_collections_create)
    cc.add_argument("name")
    cc.add_argument("--parent", default=None, help="parent collection's name")
    cc.add_argument("--color", default=None, help="#rrggbb")

    pre = sub.add_parser("presets", help="list and set export presets (client)")
    psub = pre.add_subparsers(dest="presets_command", required=True)
    add(psub, "list", "every preset", cmd_presets_list)
    ps = add(psub, "set", "create or replace a preset", cmd_presets_set)
    ps.add_argument("name")
    ps.add_argument("--format", required=True, help="JPEG|PNG|WEBP|AVIF")
    ps.add_argument("--quality", type=int, default=None)
    ps.add_argument("--max-width", type=int, default=None)
    ps.add_argument("--max-height", type=int, default=None)
    ps.add_argument("--crop", action="store_true", help="exact size (preserveAspect false)")


def run_client_command(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args))
    except ClientError as exc:
        err.print(f"pixelwand: {exc.message}")
        return 1
    except httpx.TransportError as exc:  # mid-stream (an archive cut off, a read timeout)
        err.print(f"pixelwand: the connection was lost: {exc.__class__.__name__}: {exc}")
        return 1
    except OSError as exc:  # a local file or folder: say which, never a traceback
        err.print(f"pixelwand: {exc.filename or ''}: {exc.strerror or exc}")
        return 1
    except KeyboardInterrupt:
        return 130

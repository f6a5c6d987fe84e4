"""The command-line client (`pixelwand upload|export|assets|collections|presets`) against a
live `pixelwand serve` on each backend, run as a user runs it: a subprocess with
PIXELWAND_URL and PIXELWAND_API_KEY in its environment."""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import re
import subprocess
import sys
import time
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import BACKENDS
from tests.helpers import make_image, make_mp4_head, redness, subject_image
from tests.support.live_server import (
    ROOT,
    LiveServer,
    backend_env,
    backend_services,
    live_server,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=BACKENDS)
def services(request: pytest.FixtureRequest) -> tuple[str, dict[str, str]]:
    return request.param, backend_services(request.param, request)


@pytest.fixture(scope="module")
async def live(
    services: tuple[str, dict[str, str]], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LiveServer]:
    name, shared = services
    tmp = tmp_path_factory.mktemp(f"client-{name}")
    async with backend_env(shared, tmp) as store:
        # BUSINESS: 10 requests/second, so a 50-file upload meets 429s and must wait them out.
        with live_server(store, tmp, plan="BUSINESS") as server:
            yield server


def client(
    live: LiveServer, *args: str, key: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIXELWAND_")}
    env.update(PIXELWAND_URL=live.base, PIXELWAND_API_KEY=key or live.key, COLUMNS="200")
    done = subprocess.run(
        [sys.executable, "-m", "pixelwand", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def api(live: LiveServer, method: str, path: str, **kw: Any) -> Any:
    """A request with the module's key, waiting out a 429 as the CLI does: the plan allows
    10 requests a second, and a test's checks often follow the CLI's own requests at once."""
    for _ in range(10):
        r = httpx.request(
            method, live.base + path, headers={"Authorization": f"Bearer {live.key}"}, **kw
        )
        if r.status_code != 429:
            break
        time.sleep(float(r.headers.get("retry-after", "1")))
    assert r.status_code < 300, (r.status_code, r.text)
    return r.json()


def make_folder(root: Path) -> tuple[set[str], set[str]]:
    """50 files in nested folders, 9 of them not acceptable, plus hidden ones to ignore.
    Returns (paths that must upload, paths that must fail)."""
    good: set[str] = set()
    bad: set[str] = set()
    formats = [".jpg", ".png", ".webp", ".gif"]
    for i in range(40):
        folder = root / f"set{i % 3}" / ("deep" if i % 5 == 0 else "")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"photo{i:02d}{formats[i % 4]}"
        path.write_bytes(make_image(20 + i, 16 + i % 7, formats[i % 4]))
        good.add(str(path))
    clip = root / "clip.mp4"
    clip.write_bytes(make_mp4_head(8192))
    good.add(str(clip))
    rng = random.Random(7)
    for i in range(4):
        p = root / f"notes{i}.txt"
        p.write_text(f"not an image {i}")
        bad.add(str(p))
    for i in range(3):
        p = root / "set1" / f"broken{i}.jpg"
        p.write_bytes(bytes(rng.randrange(256) for _ in range(600)))
        bad.add(str(p))
    for i in range(2):
        p = root / f"phone{i}.heic"
        p.write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(i) * 64)
        bad.add(str(p))
    # Hidden files and folders are never uploaded.
    (root / ".DS_Store").write_bytes(b"\x00\x01")
    (root / ".cache").mkdir()
    (root / ".cache" / "thumb.jpg").write_bytes(make_image(33, 33, ".jpg"))
    (root / "set0" / ".hidden.png").write_bytes(make_image(34, 34, ".png"))
    assert len(good) + len(bad) == 50
    return good, bad


async def test_upload_a_mixed_folder_then_again(live: LiveServer, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    good, bad = make_folder(folder)

    done = client(
        live,
        "upload",
        str(folder),
        "--tags",
        "batch,cli",
        "--collection",
        "Imports",
        "--concurrency",
        "4",
        "--json",
    )
    assert done.returncode == 1, done.stderr  # some files failed
    results = json_lines(done.stdout)
    assert len(results) == 50, done.stdout
    by_path = {r["path"]: r for r in results}
    assert set(by_path) == good | bad
    assert {p for p, r in by_path.items() if r["status"] == "uploaded"} == good
    assert {p for p, r in by_path.items() if r["status"] == "failed"} == bad
    for path in good:
        assert re.fullmatch(r"c[0-9a-z]{24}", by_path[path]["assetId"]), by_path[path]
        assert by_path[path]["error"] is None
    for path in bad:
        assert by_path[path]["assetId"] is None and by_path[path]["error"], by_path[path]
    # Refused types carry the API's own reason.
    assert "text/plain is not supported" in by_path[str(folder / "notes0.txt")]["error"]
    assert "HEVC" in by_path[str(folder / "phone0.heic")]["error"]
    assert len({by_path[p]["assetId"] for p in good}) == 41

    collections = api(live, "GET", "/api/v1/collections", params={"name": "Imports"})
    (imports,) = collections["collections"]
    listed = api(live, "GET", "/api/v1/assets", params={"tags": "batch,cli", "pageSize": 200})
    assert listed["total"] == 41
    assert {a["collectionId"] for a in listed["items"]} == {imports["id"]}
    assert {a["id"] for a in listed["items"]} == {by_path[p]["assetId"] for p in good}

    # The second run finds every file's content already there (the contentHash filter).
    again = client(live, "upload", str(folder), "--collection", "Imports")
    assert again.returncode == 1  # the same 9 still fail
    assert "Upload summary" in again.stdout
    row = re.search(r"(\d+)\s*│\s*(\d+)\s*│\s*(\d+)\s*│\s*(\d+)", again.stdout)
    assert row is not None, again.stdout
    assert row.groups() == ("0", "41", "9", "50"), again.stdout + again.stderr
    assert api(live, "GET", "/api/v1/assets", params={"tags": "batch"})["total"] == 41


async def test_upload_exit_status_and_errors(live: LiveServer, tmp_path: Path) -> None:
    one = tmp_path / "one.png"
    one.write_bytes(make_image(41, 29, ".png"))
    ok = client(live, "upload", str(one), "--json")
    assert ok.returncode == 0, ok.stderr
    (result,) = json_lines(ok.stdout)
    assert result["status"] in ("uploaded", "skipped") and result["assetId"]

    missing = client(live, "upload", str(tmp_path / "nope.jpg"), "--json")
    assert missing.returncode == 1
    assert json_lines(missing.stdout)[0]["status"] == "failed"

    wrong = client(live, "assets", "list", key="ak_live_" + "y" * 40)
    assert wrong.returncode == 1 and "invalid or revoked API key" in wrong.stderr


async def test_a_key_that_may_not_upload_is_told_before_any_file(
    live: LiveServer, tmp_path: Path
) -> None:
    """A read-only or admin-only key stops at once with the API's 403, not a failure per
    file; nothing is uploaded, and the probe creates nothing."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(5):
        (folder / f"p{i}.png").write_bytes(make_image(91 + i, 17, ".png"))
    before = api(live, "GET", "/api/v1/assets", params={"pageSize": 1})["total"]
    for scopes in ("read", "admin"):
        done = client(live, "upload", str(folder), "--json", key=live.new_key(scopes))
        assert done.returncode == 1
        assert done.stdout == "", done.stdout  # no per-file lines: it stopped before them
        assert "write" in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert api(live, "GET", "/api/v1/assets", params={"pageSize": 1})["total"] == before


async def test_a_write_only_key_uploads(live: LiveServer, tmp_path: Path) -> None:
    """The key a build uploads with holds only `write`: looking up known content and
    collections needs `read`, so those are skipped with a note (nothing is skipped, the
    collection is created or found by creating it) and every file still uploads."""
    writer = live.new_key("write", name="ci uploads")
    folder = tmp_path / "build"
    folder.mkdir()
    for i in range(3):
        (folder / f"shot{i}.png").write_bytes(make_image(71 + i, 13, ".png"))
    api(live, "POST", "/api/v1/collections", json={"name": "Builds"})
    done = client(
        live, "upload", str(folder), "--collection", "Builds", "--tags", "ci", "--json", key=writer
    )
    assert done.returncode == 0, done.stderr
    results = json_lines(done.stdout)
    assert [r["status"] for r in results] == ["uploaded"] * 3, done.stdout
    assert "lacks the read scope" in done.stderr and "nothing is skipped" in done.stderr
    (builds,) = api(live, "GET", "/api/v1/collections", params={"name": "Builds"})["collections"]
    listed = api(live, "GET", "/api/v1/assets", params={"tags": "ci"})
    assert {a["collectionId"] for a in listed["items"]} == {builds["id"]}
    assert {a["id"] for a in listed["items"]} == {r["assetId"] for r in results}


async def test_export_round_trips(live: LiveServer, tmp_path: Path) -> None:
    folder = tmp_path / "export-src"
    folder.mkdir()
    names = []
    for i in range(5):
        name = f"pic{i}.jpg"
        (folder / name).write_bytes(make_image(50 + i, 40, ".jpg"))
        names.append(name)
    up = client(live, "upload", str(folder), "--tags", "roundtrip", "--json")
    assert up.returncode == 0, up.stderr
    ids = [r["assetId"] for r in json_lines(up.stdout)]

    out = tmp_path / "out.zip"
    done = client(
        live, "export", "--tag", "roundtrip", "--format", "png", "--max-width", "16", "-o", str(out)
    )
    assert done.returncode == 0, done.stderr
    archive = zipfile.ZipFile(out)
    assert sorted(archive.namelist()) == sorted(n.replace(".jpg", ".png") for n in names)
    for entry in archive.namelist():
        data = archive.read(entry)
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert int.from_bytes(data[16:20], "big") == 16  # width from the IHDR chunk

    # By ids, with a preset made by the client.
    assert (
        client(live, "presets", "set", "tiny", "--format", "webp", "--max-width", "8").returncode
        == 0
    )
    presets = json_lines(client(live, "presets", "list", "--json").stdout)[0]["presets"]
    assert [p["name"] for p in presets if p["name"] == "tiny"] == ["tiny"]
    by_ids = tmp_path / "two.zip"
    done = client(live, "export", ids[0], ids[1], "--preset", "tiny", "-o", str(by_ids), "--json")
    assert done.returncode == 0, done.stderr
    (summary,) = json_lines(done.stdout)
    assert summary["archives"] == [
        {"path": str(by_ids), "assets": 2, "bytes": by_ids.stat().st_size}
    ]
    entries = zipfile.ZipFile(io.BytesIO(by_ids.read_bytes())).namelist()
    assert all(e.endswith(".webp") for e in entries) and len(entries) == 2

    nothing = client(live, "export", "--tag", "no-such-tag", "-o", str(tmp_path / "x.zip"))
    assert nothing.returncode == 1 and "no assets match" in nothing.stderr


def test_an_export_takes_every_setting_of_its_preset() -> None:
    from compat_rest.openapi import document
    from pixelwand.client.commands import PRESET_CONFIG

    schemas = document()["components"]["schemas"]
    shared = set(schemas["ExportConfig"]["properties"]) & set(schemas["ExportPreset"]["properties"])
    assert set(PRESET_CONFIG) == shared


async def test_export_with_a_preset_is_that_preset(live: LiveServer, tmp_path: Path) -> None:
    """A preset that crops with gravity `attention` keeps the off-centre subject; the same
    size cropped at the centre does not. An export with the preset must be the former (and
    its format AUTO, whose reported quality is a fallback the export must not send)."""
    src = tmp_path / "subject.png"
    src.write_bytes(subject_image(400, 100, 0.9, 0.5, ".png"))
    up = client(live, "upload", str(src), "--json")
    (asset_id,) = [r["assetId"] for r in json_lines(up.stdout)]
    smart = {"name": "smart-crop", "format": "AUTO", "formats": ["WEBP"], "perceptual": "auto:high"}
    smart.update(maxWidth=60, maxHeight=60)
    api(
        live,
        "POST",
        "/api/v1/export-presets",
        json={**smart, "preserveAspect": False, "gravity": "attention"},
    )
    with_preset, centred = tmp_path / "preset.zip", tmp_path / "center.zip"
    done = client(live, "export", asset_id, "--preset", "smart-crop", "-o", str(with_preset))
    assert done.returncode == 0, done.stderr
    done = client(
        live,
        "export",
        asset_id,
        "--format",
        "png",
        "--max-width",
        "60",
        "--max-height",
        "60",
        "--crop",
        "-o",
        str(centred),
    )
    assert done.returncode == 0, done.stderr
    (kept,) = [
        zipfile.ZipFile(with_preset).read(n) for n in zipfile.ZipFile(with_preset).namelist()
    ]
    (cut,) = [zipfile.ZipFile(centred).read(n) for n in zipfile.ZipFile(centred).namelist()]
    assert redness(kept) > redness(cut) + 5


async def test_assets_collections_presets_commands(live: LiveServer, tmp_path: Path) -> None:
    pic = tmp_path / "solo.webp"
    pic.write_bytes(make_image(61, 17, ".webp"))
    up = client(live, "upload", str(pic), "--tags", "solo", "--json")
    asset_id = json_lines(up.stdout)[0]["assetId"]

    listed = client(live, "assets", "list", "--tags", "solo", "--json")
    assert [a["id"] for a in json_lines(listed.stdout)[0]["items"]] == [asset_id]
    table = client(live, "assets", "list", "--q", "solo")
    assert table.returncode == 0 and asset_id in table.stdout and "solo.webp" in table.stdout
    shown = client(live, "assets", "show", asset_id, "--json")
    assert json_lines(shown.stdout)[0]["originalName"] == "solo.webp"
    assert "originalName" in client(live, "assets", "show", asset_id).stdout

    made = client(live, "collections", "create", "Parent", "--json")
    parent = json_lines(made.stdout)[0]
    child = json_lines(
        client(live, "collections", "create", "Child", "--parent", "Parent", "--json").stdout
    )[0]
    assert child["parentId"] == parent["id"]
    tree = client(live, "collections", "list")
    assert "Parent / Child" in tree.stdout

    rm = client(live, "assets", "rm", asset_id, "--json")
    assert rm.returncode == 0 and json_lines(rm.stdout)[0] == {"id": asset_id, "deleted": True}
    again = client(live, "assets", "show", asset_id)
    assert again.returncode == 1 and "not found" in again.stderr


def test_an_export_past_500_assets_is_split_into_numbered_archives(tmp_path: Path) -> None:
    """1,001 assets by tag: three POST /exports of 500, 500 and 1 ids, in the listing's order,
    each written whole to its own numbered archive."""
    import argparse
    import asyncio
    import contextlib

    from pixelwand.client import commands

    ids = [f"a{i:04d}" for i in range(1001)]
    posted: list[dict[str, Any]] = []

    class Archives:  # the API side the client speaks to: listing pages, streamed ZIPs
        async def pages(self, params: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
            assert params == {"tags": "big"}
            for asset_id in ids:
                yield {"id": asset_id}

        @contextlib.asynccontextmanager
        async def stream_post(self, path: str, json: Any) -> AsyncIterator[Any]:
            assert path == "/exports"
            posted.append(json)
            archive = f"ZIP of {len(json['assetIds'])}".encode()

            class Response:
                async def aiter_bytes(self) -> AsyncIterator[bytes]:
                    yield archive

            yield Response()

    args = argparse.Namespace(
        ids=[], collection=None, tag=["big"], preset=None, format="WEBP", quality=None,
        max_width=64, max_height=None, crop=False, rename=False,
        output=str(tmp_path / "photos.zip"), json=True,
    )  # fmt: skip
    assert asyncio.run(commands._export(Archives(), args)) == 0  # type: ignore[arg-type]
    assert [len(body["assetIds"]) for body in posted] == [500, 500, 1]
    assert [i for body in posted for i in body["assetIds"]] == ids
    assert all(body["config"] == {"format": "WEBP", "maxWidth": 64} for body in posted)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "photos-1.zip",
        "photos-2.zip",
        "photos-3.zip",
    ]
    assert (tmp_path / "photos-3.zip").read_bytes() == b"ZIP of 1"


def test_archives_past_500_assets_are_numbered() -> None:
    """More than 500 assets (the API's limit a request) become FILE-1.zip, FILE-2.zip, …"""
    from pixelwand.client.commands import EXPORT_BATCH, archive_paths

    assert EXPORT_BATCH == 500
    assert archive_paths(Path("out/photos.zip"), 1) == [Path("out/photos.zip")]
    assert archive_paths(Path("out/photos.zip"), 3) == [
        Path("out/photos-1.zip"),
        Path("out/photos-2.zip"),
        Path("out/photos-3.zip"),
    ]


# --- an outside review's cases (issue 14) --------------------------------------------------


async def test_names_with_brackets_are_shown_as_they_are(live: LiveServer, tmp_path: Path) -> None:
    """Rich reads `[...]` as markup: names are data, shown verbatim, never styles or a crash."""
    folder = tmp_path / "brackets"
    folder.mkdir()
    (folder / "IMG [edited].jpg").write_bytes(make_image(83, 21, ".jpg"))
    (folder / "notes [red].txt").write_text("not an image")
    done = client(live, "upload", str(folder))
    assert done.returncode == 1, done.stderr
    assert "notes [red].txt" in done.stdout
    ids = [a["id"] for a in api(live, "GET", "/api/v1/assets", params={"q": "edited"})["items"]]
    assert len(ids) == 1
    api(live, "PATCH", f"/api/v1/assets/{ids[0]}", json={"name": "cut [/b] [bold]x[/bold]"})
    listing = client(live, "assets", "list", "--q", "cut")
    assert listing.returncode == 0, listing.stderr
    assert "cut [/b] [bold]x[/bold]" in listing.stdout
    shown = client(live, "assets", "show", ids[0])
    assert shown.returncode == 0, shown.stderr
    assert "cut [/b] [bold]x[/bold]" in shown.stdout


def with_terminal_stderr(live: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    """The client run with stdout a pipe and stderr a terminal (a pty, drained meanwhile)."""
    import pty
    import threading

    env = {k: v for k, v in os.environ.items() if not k.startswith("PIXELWAND_")}
    env.update(PIXELWAND_URL=live.base, PIXELWAND_API_KEY=live.key, COLUMNS="40")
    terminal, stderr = pty.openpty()

    def drain() -> None:
        with contextlib.suppress(OSError):
            while os.read(terminal, 65536):
                pass

    threading.Thread(target=drain, daemon=True).start()
    try:
        return subprocess.run(
            [sys.executable, "-m", "pixelwand", *args],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            timeout=300,
        )
    finally:
        os.close(stderr)
        os.close(terminal)


async def test_json_lines_go_to_stdout_when_stderr_is_a_terminal(
    live: LiveServer, tmp_path: Path
) -> None:
    """`pixelwand upload --json DIR > results.jsonl` typed in a terminal: the progress bar
    draws on the terminal (stderr) and every result line lands whole in the file."""
    folder = tmp_path / "piped"
    folder.mkdir()
    for i in range(3):
        (folder / f"p{i}.png").write_bytes(make_image(90 + i, 23, ".png"))
    done = with_terminal_stderr(live, "upload", "--json", str(folder))
    assert done.returncode == 0
    results = json_lines(done.stdout)
    assert sorted(r["path"] for r in results) == sorted(str(p) for p in folder.iterdir())
    assert {r["status"] for r in results} == {"uploaded"}


async def test_export_to_a_missing_folder_says_so(live: LiveServer, tmp_path: Path) -> None:
    pic = tmp_path / "lone.png"
    pic.write_bytes(make_image(97, 19, ".png"))
    up = client(live, "upload", str(pic), "--json")
    (asset_id,) = [r["assetId"] for r in json_lines(up.stdout)]
    target = tmp_path / "no" / "such" / "dir" / "out.zip"
    done = client(live, "export", asset_id, "-o", str(target))
    assert done.returncode == 1
    assert f"{target.parent}: no such directory" in done.stderr
    assert not target.parent.exists()
    folder = tmp_path / "exports"
    folder.mkdir()
    for output in (str(folder), ".", ""):  # a folder, not an archive's name
        done = client(live, "export", asset_id, "-o", output)
        assert done.returncode == 1
        assert "is a directory: name the archive" in done.stderr, done.stderr
    left = os.listdir(tmp_path) + os.listdir(ROOT)
    assert [name for name in left if name.endswith(".part")] == []


async def test_a_pasted_key_with_spaces_and_a_newline_works(live: LiveServer) -> None:
    done = client(live, "collections", "list", "--json", key=f"  {live.key}\n")
    assert done.returncode == 0, done.stderr
    assert "collections" in json_lines(done.stdout)[0]
    # The prefix the keys list shows ("ak_live_AbCd…"), or a key cut by a line break.
    for key in (live.key[:12] + "\u2026", live.key[:20] + " " + live.key[20:]):
        done = client(live, "collections", "list", key=key)
        assert done.returncode == 1
        assert "paste the whole key" in done.stderr, done.stderr


async def test_an_id_is_one_path_segment(live: LiveServer, tmp_path: Path) -> None:
    """`assets show/rm ID` never reach another route or asset through `../` or `?`."""
    pic = tmp_path / "kept.png"
    pic.write_bytes(make_image(99, 13, ".png"))
    (kept,) = [r["assetId"] for r in json_lines(client(live, "upload", str(pic), "--json").stdout)]
    done = client(live, "assets", "rm", f"x/../{kept}", f"{kept}?x")
    assert done.returncode == 1
    assert done.stderr.count("not found") == 2, done.stderr
    assert api(live, "GET", f"/api/v1/assets/{kept}")["id"] == kept
    shown = client(live, "assets", "show", "../export-presets")
    assert shown.returncode == 1
    assert "not found" in shown.stderr


async def test_a_broken_symlink_in_a_folder_is_reported(live: LiveServer, tmp_path: Path) -> None:
    folder = tmp_path / "links"
    folder.mkdir()
    (folder / "real.png").write_bytes(make_image(101, 11, ".png"))
    (folder / "gone.png").symlink_to(tmp_path / "missing.png")
    done = client(live, "upload", str(folder), "--json")
    assert done.returncode == 1
    by_path = {r["path"]: r for r in json_lines(done.stdout)}
    assert by_path[str(folder / "real.png")]["status"] == "uploaded"
    assert by_path[str(folder / "gone.png")]["status"] == "failed"
    assert "no such file" in by_path[str(folder / "gone.png")]["error"]


async def test_known_content_is_looked_up_behind_a_proxy_with_short_urls() -> None:
    """200 hashes make a 15 kB URL; a proxy refusing URLs over 8 kB (nginx's default) answers
    414, and the lookup asks again in halves instead of failing the whole upload."""
    from pixelwand.client.api import Api, Target
    from pixelwand.client.uploads import existing_assets

    hashes = [f"sha256:{i:064x}" for i in range(450)]
    held = {h: f"asset{i}" for i, h in enumerate(hashes) if i % 7 == 0}
    asked: list[int] = []

    def proxy(request: httpx.Request) -> httpx.Response:
        if len(str(request.url)) > 8192:
            return httpx.Response(414, text="<html>414 Request-URI Too Large</html>")
        wanted = request.url.params["contentHash"].split(",")
        asked.append(len(wanted))
        items = [{"id": held[h], "contentHash": h} for h in wanted if h in held]
        return httpx.Response(200, json={"items": items, "totalPages": 1})

    api = Api(Target("http://pixels.example", "ak_live_x"))
    await api.http.aclose()
    api.http = httpx.AsyncClient(transport=httpx.MockTransport(proxy))
    try:
        found, supported = await existing_assets(api, hashes)
    finally:
        await api.close()
    assert supported and found == held
    assert sum(asked) == len(hashes) and max(asked) <= 100


async def test_a_server_that_is_not_pixel_wand_is_named() -> None:
    """PIXELWAND_URL pointing at another app (a dev server answering every path with its
    HTML page, 200): a message naming the URL, not a JSONDecodeError traceback."""
    from pixelwand.client.api import Api, ClientError, Target

    def other_app(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, html="<!doctype html><title>Some other app</title>")

    api = Api(Target("http://127.0.0.1:8000", "ak_live_x"))
    await api.http.aclose()
    api.http = httpx.AsyncClient(transport=httpx.MockTransport(other_app))
    try:
        with pytest.raises(ClientError) as refused:
            await api.call("GET", "/collections")
    finally:
        await api.close()
    assert "http://127.0.0.1:8000 answered HTTP 200 without JSON" in refused.value.message
    assert "is it a Pixel Wand server?" in refused.value.message


def test_an_export_cut_off_midway_is_one_line_and_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The server (or the network) drops the archive halfway: exit status 1 with a line
    saying so, no traceback (it was an httpx.ReadError), no archive and no .part file."""
    from pixelwand.client import commands
    from pixelwand.client.api import Api

    class CutOff(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield b"PK\x03\x04" + bytes(1000)
            raise httpx.ReadError("connection reset by peer")

    def server(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=CutOff())

    class MockApi(Api):
        def __init__(self, target: Any, **kw: Any) -> None:
            super().__init__(target, **kw)
            self.http = httpx.AsyncClient(transport=httpx.MockTransport(server))

    monkeypatch.setattr(commands, "Api", MockApi)
    output = tmp_path / "cut.zip"
    parser = commands.argparse.ArgumentParser()
    commands.add_client_commands(parser.add_subparsers())
    args = parser.parse_args(["export", "a1", "--api-key", "ak_live_x", "-o", str(output)])
    assert commands.run_client_command(args) == 1
    assert "pixelwand: the connection was lost: ReadError" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


async def test_a_file_name_that_is_not_utf8_uploads(live: LiveServer, tmp_path: Path) -> None:
    """A name from an old Latin-1 archive (`caf\\xe9.jpg` in bytes) aborted the whole upload
    with a UnicodeEncodeError traceback; it uploads, named with U+FFFD for the bad byte,
    whether sent in one PUT or in parts, and the other files upload beside it."""
    folder = tmp_path / "latin1"
    folder.mkdir()
    (folder / "fine.png").write_bytes(make_image(103, 17, ".png"))
    odd = folder / os.fsdecode(b"caf\xe9.png")
    odd.write_bytes(make_image(104, 17, ".png"))
    big = folder / os.fsdecode(b"gro\xdf.png")
    big.write_bytes(make_image(300, 200, ".png"))
    threshold = str(big.stat().st_size)  # the largest goes in parts, the others in one PUT
    assert max(odd.stat().st_size, (folder / "fine.png").stat().st_size) < big.stat().st_size
    done = client(live, "upload", str(folder), "--json", "--multipart-threshold", threshold)
    assert done.returncode == 0, done.stderr
    results = json_lines(done.stdout)
    assert [r["status"] for r in results] == ["uploaded"] * 3
    names = {api(live, "GET", f"/api/v1/assets/{r['assetId']}")["name"] for r in results}
    assert names == {"fine.png", "caf\ufffd.png", "gro\ufffd.png"}


def test_a_wrong_key_is_told_before_hashing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """3,000 photos and a mistyped key: the API's 401 comes first, not after every file
    has been read and hashed."""
    from pixelwand.client import commands
    from pixelwand.client.api import Api

    (tmp_path / "a.png").write_bytes(make_image(20, 20, ".png"))
    hashed: list[Path] = []
    monkeypatch.setattr(commands, "sha256_of", lambda p: hashed.append(p) or "sha256:0")

    def server(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": "invalid or revoked API key"})

    class MockApi(Api):
        def __init__(self, target: Any, **kw: Any) -> None:
            super().__init__(target, **kw)
            self.http = httpx.AsyncClient(transport=httpx.MockTransport(server))

    monkeypatch.setattr(commands, "Api", MockApi)
    parser = commands.argparse.ArgumentParser()
    commands.add_client_commands(parser.add_subparsers())
    args = parser.parse_args(["upload", str(tmp_path), "--api-key", "ak_live_wrong"])
    assert commands.run_client_command(args) == 1
    assert "pixelwand: invalid or revoked API key" in capsys.readouterr().err
    assert hashed == []


def test_a_url_without_its_scheme_is_told_at_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`PIXELWAND_URL=127.0.0.1:8000` (no http://): said at once, not after six attempts and
    15 s of backoff (an UnsupportedProtocol is the same on every attempt). So is any error
    raised before a byte leaves (LocalProtocolError); a dropped connection is retried."""
    from pixelwand.client import api as client_api
    from pixelwand.client import commands

    waits: list[float] = []

    async def no_sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(client_api.asyncio, "sleep", no_sleep)
    parser = commands.argparse.ArgumentParser()
    commands.add_client_commands(parser.add_subparsers())
    for url in ("127.0.0.1:8000", "ftp://pixels.example"):
        args = parser.parse_args(["assets", "list", "--url", url, "--api-key", "ak_live_x"])
        assert commands.run_client_command(args) == 1
        assert "must start with http:// or https://" in capsys.readouterr().err
    assert waits == []

    async def attempts(error: Exception) -> int:
        calls: list[int] = []

        async def send() -> httpx.Response:
            calls.append(1)
            raise error

        with pytest.raises(client_api.ClientError):
            await client_api.with_retries(send)
        return len(calls)

    assert asyncio_run(attempts(httpx.LocalProtocolError("Illegal header value"))) == 1
    assert asyncio_run(attempts(httpx.ConnectError("refused"))) == client_api.MAX_ATTEMPTS


def asyncio_run(coroutine: Any) -> Any:
    import asyncio

    return asyncio.run(coroutine)

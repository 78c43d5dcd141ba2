"""`rolebridge server`: HTTPS on uvicorn, `server.json` written once the socket is listening."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer

from rolebridge.cli.options import DatabaseUrl, DataDir
from rolebridge.config import DEFAULT_PORT


def _write_server_json(services, port: int) -> None:  # type: ignore[no-untyped-def]
    paths = services.store.paths
    info = {"url": f"https://127.0.0.1:{port}", "ca_bundle": str(paths.ca_pem), "pid": os.getpid(),
            "public_url": services.public_url}
    tmp = paths.server_json.with_suffix(".tmp")
    tmp.write_text(json.dumps(info))
    os.replace(tmp, paths.server_json)


def _best(fast: str, fallback: str) -> str:
    """uvloop / httptools when installed (they are dependencies: ``uvicorn[standard]``), by name, so a
    missing one is visible in ``--log-level info`` rather than silently replaced by "auto"."""
    import importlib.util

    return fast if importlib.util.find_spec(fast) is not None else fallback


def _server_class(uvicorn: Any) -> Any:
    """uvicorn's Server that says when it is serving, and closes the control socket when it stops.

    How connections end at a stop (idle ones are not waited for) is the protocol's
    (``http/protocol.py``), so it holds for ``--workers N`` too, whose processes build uvicorn's own
    Server.
    """

    from rolebridge.http.serving import BoundedServer  # the TLS handshake bounded too (http/serving.py)

    class Server(BoundedServer):  # type: ignore[misc]
        def __init__(self, config: Any, *, on_ready: Callable[[], None], before_shutdown: Callable[[], None]) -> None:
            super().__init__(config)
            self._on_ready, self._before_shutdown = on_ready, before_shutdown

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            # Ready only now: uvicorn's signal handlers are in place, so a stop right after is graceful.
            if self.started and not self.should_exit:
                self._on_ready()

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            self._before_shutdown()  # idle and unanswerable connections: see http/protocol.py
            await super().shutdown(sockets)

    return Server


def _start_indexer(paths: Any) -> subprocess.Popen[bytes]:
    """The audit journal's follower (``audit/ingest.py``), at low CPU priority: the request path
    never waits for it, and under load the workers come first.

    Its own process group (a terminal's Ctrl-C stops the server, which stops the follower in order),
    but the server's session. With the kernel's autogroup scheduling (on in most distributions'
    kernels; not under a cgroup CPU controller such as a systemd service's, where the nice value
    applies as it is), each session is a group sharing the CPU equally with the others, and a nice
    value only ranks processes within their group: in a session of its own the follower, niced or
    not, took a whole group's share from saturated workers. Measured side by side, 2 workers at 64
    connections: p99 ~23 -> ~17 ms and +5-8 % req/s for this change; p99 ~14 ms with the follower
    stopped (docs/benchmarks.md)."""
    # the database URL (it may hold a password) travels in the environment serve() set, never in argv
    return subprocess.Popen(
        [sys.executable, "-m", "rolebridge.audit.ingest", "--follow", "--parent", str(os.getpid()), "--nice", "10",
         "--data-dir", str(paths.data_dir)],
        stdin=subprocess.DEVNULL, process_group=0)


def _stop_indexer(indexer: subprocess.Popen[bytes]) -> None:
    if indexer.poll() is None:
        indexer.terminate()
        try:
            indexer.wait(5)
        except subprocess.TimeoutExpired:
            indexer.kill()
            indexer.wait()


class StartError(Exception):
    """The server cannot start for a reason of the user's environment (printed in one line)."""


def _listening_sockets(host: str, port: int, count: int = 1) -> list[socket.socket]:
    """The bound sockets to serve: one, or for ``--workers N`` one per worker on one port.

    Per-worker sockets share the port with ``SO_REUSEPORT`` (``http/serving.WorkerSockets``: the
    kernel spreads connections over them by address hash, where one shared socket went to whichever
    worker woke first). Linux only: elsewhere ``SO_REUSEPORT`` does not spread TCP connections, so
    the workers share one socket as before, as they do where the kernel refuses the option. The port
    is first bound without it, so a port another server holds, even one holding it with
    ``SO_REUSEPORT``, is refused as before (only a process of the same user binding it in the
    microseconds between that check and the per-worker binds could join unseen).
    """
    first = _bind(host, port, reuse_port=False)
    if count <= 1 or not sys.platform.startswith("linux"):
        return [first]
    port = first.getsockname()[1]
    first.close()
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sockets.append(_bind(host, port, reuse_port=True))
    except _NoReusePort:
        for sock in sockets:
            sock.close()
        return [_bind(host, port, reuse_port=False)]
    except StartError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class _NoReusePort(Exception):
    """This kernel refuses ``SO_REUSEPORT`` (some sandboxes): the workers share one socket."""


def _bind(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        except (AttributeError, OSError):
            sock.close()
            raise _NoReusePort from None
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        hint = " (pick another --port, or --port 0 for a free one)" if exc.errno == errno.EADDRINUSE else ""
        raise StartError(f"cannot listen on {where}: {exc.strerror or exc}{hint}") from None
    return sock


def serve(data_dir: str | None, database_url: str | None, host: str, port: int, public_url: str | None,
          workers: int = 1, log_level: str = "warning", pin_workers: bool = False) -> None:
    """Serve until stopped, as the data dir's only server: its lock is taken before anything of the data
    dir is touched and let go only after server.json and run.sock are removed (``server_info``)."""
    from rolebridge.config import resolve_paths
    from rolebridge.platform.server_info import hold_server_lock

    lock = hold_server_lock(resolve_paths(data_dir, database_url).data_dir)
    try:
        _serve(data_dir, database_url, host, port, public_url, workers, log_level, pin_workers)
    finally:
        os.close(lock)


def _serve(data_dir: str | None, database_url: str | None, host: str, port: int, public_url: str | None,
           workers: int, log_level: str, pin_workers: bool = False) -> None:
    import uvicorn

    from rolebridge.bootstrap import open_services
    from rolebridge.http.app import create_app
    from rolebridge.http.protocol import KEEP_ALIVE_TIMEOUT
    from rolebridge.platform.control import start_control

    if pin_workers and workers <= 1:
        print("note: --pin-workers applies to --workers N (N > 1); one serving process is not pinned",
              file=sys.stderr)
    sockets = _listening_sockets(host, port, workers)
    port = sockets[0].getsockname()[1]
    services = open_services(data_dir, database_url, public_url=public_url or f"https://127.0.0.1:{port}")
    paths = services.store.paths
    if database_url:
        os.environ["ROLEBRIDGE_DATABASE_URL"] = database_url
    os.environ["ROLEBRIDGE_DATA_DIR"] = str(paths.data_dir)
    tls = paths.tls_dir
    config = uvicorn.Config(
        "rolebridge.http.asgi:app" if workers > 1 else create_app(services),
        host=host, port=port, workers=workers, log_level=log_level, access_log=False,
        ssl_certfile=str(tls / "server.pem"), ssl_keyfile=str(tls / "server-key.pem"),
        ssl_version=ssl.PROTOCOL_TLS_SERVER, loop=_best("uvloop", "asyncio"),
        # httptools with read deadlines (http/protocol.py: slow clients cannot hold connections forever)
        http="rolebridge.http.protocol:DeadlineHttpToolsProtocol" if _best("httptools", "h11") == "httptools"
        else "h11", lifespan="off",
        timeout_keep_alive=KEEP_ALIVE_TIMEOUT, limit_concurrency=4096, timeout_graceful_shutdown=10,
        # the peer address is the client's: uvicorn would otherwise take X-Forwarded-For from any
        # loopback client, letting a local job choose its own aws:SourceIp (and its audit address)
        proxy_headers=False,
    )
    if workers == 1:
        from rolebridge.http import heap

        heap.settle()  # this process serves until it exits (http/heap.py); each worker settles its own
    for sock in sockets:
        sock.listen(2048)
    # the journal's follower also moves in what a crashed server left; readers never wait for it (they
    # ingest before they read), so a restart after a crash serves at once however long the backlog
    indexer = _start_indexer(paths)
    # uvicorn re-raises the stop signal after its graceful shutdown; with the default handler that would
    # kill the process before `finally` removes server.json, so the original handler exits cleanly instead.
    # Set before server.json exists: a client may stop the server as soon as it sees that file.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    control = start_control(services, sts_url=f"https://127.0.0.1:{port}", ca_bundle=str(paths.ca_pem))
    server = _server_class(uvicorn)(config, on_ready=lambda: _write_server_json(services, port),
                                    before_shutdown=control.close)
    from rolebridge.compiled import summary

    print(f"rolebridge server on https://{host}:{port} (public URL {services.public_url}, data {paths.data_dir}; "
          f"{summary()})", file=sys.stderr, flush=True)
    try:
        if workers > 1:
            import inspect

            from rolebridge.http.serving import SlottedMultiprocess, WorkerSockets, use_in_workers

            # each worker's TLS handshakes bounded as this process's are, one socket each, and its own CPU if asked
            use_in_workers(pin=pin_workers)
            shared = WorkerSockets(sockets) if len(sockets) > 1 else sockets
            class Workers(SlottedMultiprocess):
                def terminate_all(self) -> None:  # the workers hold the control socket's connection (above)
                    control.close()
                    super().terminate_all()

            _write_server_json(services, port)  # the workers serve the socket, which already accepts
            # uvicorn >= 0.30 starts each worker itself (no ``target``); older ones took it
            if "target" in inspect.signature(SlottedMultiprocess.__init__).parameters:
                Workers(config, target=server.run, sockets=shared).run()  # type: ignore[call-arg]
            else:
                Workers(config, sockets=shared).run()
        else:
            server.run(sockets=sockets)
    finally:
        control.close()
        _stop_indexer(indexer)
        try:
            data = json.loads(paths.server_json.read_text())
            if data.get("pid") == os.getpid():
                paths.server_json.unlink()
        except (OSError, ValueError):
            pass


def register(app: typer.Typer) -> None:
    @app.command("server")
    def server_cmd(
        data_dir: DataDir = None,
        database_url: DatabaseUrl = None,
        host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="Port (0 picks a free one).", min=0, max=65535)] = DEFAULT_PORT,
        public_url: Annotated[str | None, typer.Option(help="Public URL; fixed by the first start.")] = None,
        workers: Annotated[int, typer.Option(help="Worker processes sharing the port.")] = 1,
        log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
        pin_workers: Annotated[bool, typer.Option(
            "--pin-workers", help="With --workers N: each worker on its own CPU (round robin over the CPUs "
            "the server may use). Fewer migrations and warmer caches on a machine the server has to itself; "
            "on a shared one a pinned worker cannot move off a busy CPU.")] = False,
    ) -> None:
        """Serve IAM, STS and the cluster issuers over HTTPS."""
        from rolebridge.platform.server_info import DataDirBusy

        try:
            serve(data_dir, database_url, host, port, public_url, workers, log_level, pin_workers)
        except (DataDirBusy, StartError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(1) from None

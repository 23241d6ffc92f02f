"""``lorakit serve``: the command that starts the server (uvicorn)."""

from __future__ import annotations

import errno
import socket

import click

from lorakit.errors import ConfigError
from lorakit.serving.tls import check_tls_files


def parse_base(spec: str) -> tuple[str, str]:
    """``voice-clone=piper:en_US-joe-medium`` -> ("voice-clone", "piper:en_US-joe-medium")."""
    task, sep, base = spec.partition("=")
    if not sep or not task or not base:
        raise ConfigError(f"--base {spec!r}: write TASK=BASE, e.g. --base voice-clone=demo")
    return task, base


@click.command("serve")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every network).")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--base", "bases", multiple=True, metavar="TASK=BASE",
              help="Also serve a base without adapters (its own voices), e.g. voice-clone=demo. Repeatable.")
@click.option("--queue-size", default=16, show_default=True, type=click.IntRange(1, 10_000),
              help="Requests that may wait or run at once; beyond it the server answers 503.")
@click.option("--max-batch", default=8, show_default=True, type=click.IntRange(1, 256),
              help="Queued requests for the same adapters answered by one model call.")
@click.option("--hot-mixes", default=0, show_default=True, type=click.IntRange(0, 64),
              help="Keep this many adapter mixes that are asked for again merged into private copies of their "
                   "base (one more copy of the model in memory each): merged speed for the voices in use.")
@click.option("--max-upload", default=16, show_default=True, type=click.IntRange(1, 4096), metavar="MB",
              help="Largest request body in MB; larger ones get 413 (an uncompressed DICOM X-ray runs 10-30 MB, "
                   "a mammogram 50).")
@click.option("--api-key", envvar="LORAKIT_API_KEY", metavar="KEY",
              help="Answer only requests that carry KEY (Authorization: Bearer KEY, an OpenAI client's api_key; "
                   "the web page asks for it once). Also read from LORAKIT_API_KEY, which keeps it out of the "
                   "process list.")
@click.option("--tls-cert", type=click.Path(dir_okay=False), metavar="PEM",
              help="Serve HTTPS with this certificate (PEM; a chain: the server's first). Clients then use https://.")
@click.option("--tls-key", type=click.Path(dir_okay=False), metavar="PEM",
              help="The certificate's private key (PEM, without a passphrase), unless --tls-cert holds it too.")
def serve(paths: tuple[str, ...], host: str, port: int, bases: tuple[str, ...], queue_size: int,
          max_batch: int, hot_mixes: int, max_upload: int, api_key: str | None, tls_cert: str | None,
          tls_key: str | None) -> None:
    """Serve the adapters under PATHS (run folders, adapter folders, or folders
    of runs) over HTTP: OpenAI's /v1/audio/speech and /v1/chat/completions
    (images: caption and VQA models), /v1/captions, /v1/vqa, /v1/music, a web
    page at /, and reports of the runs.

    \b
    lorakit serve runs/
    lorakit serve runs/ --base voice-clone=demo --port 8000
    lorakit serve runs/ --host 0.0.0.0 --api-key KEY --tls-cert cert.pem --tls-key key.pem
    """
    import os
    from pathlib import Path

    from lorakit.progress import console, escape

    missing = [p for p in paths if not Path(p).is_dir()]
    if missing:
        raise ConfigError(f"{missing[0]}: no such folder; pass run folders, adapter folders or folders of runs")
    if not paths and not bases:
        raise ConfigError("nothing to serve: pass folders of runs (lorakit serve runs/) or --base TASK=BASE")
    if api_key is None:  # click reads an empty variable as unset; a key set empty is a mistake to say
        api_key = os.environ.get("LORAKIT_API_KEY")
    if api_key is not None and not api_key.strip():
        raise ConfigError("--api-key (or LORAKIT_API_KEY) is empty: give the key clients must send, or leave it out")
    check_tls_files(tls_cert, tls_key)
    try:
        import uvicorn

        from lorakit.serving.app import SPEECH_TASK, base_voices, create_app
    except ImportError as exc:
        raise ConfigError(f"lorakit serve needs the serve extra ({exc.name} is missing): "
                          'pip install "lorakit[serve]"') from None
    from lorakit.serving.service import Service

    listening = _bound(host, port)  # a port in use is said before the bases load, and kept while they do
    service = Service(list(paths), [parse_base(b) for b in bases], queue_size, max_batch, hot_mixes=hot_mixes)
    console.print("loading bases and adapters...")
    service.start()
    named = [service.workers[key] for key in service.extra_bases]
    unloaded = next((w for w in named if w.loaded is None), None)
    if unloaded is not None:  # a base the command line names and cannot serve is a mistake to say, not to serve around
        service.stop()
        listening.close()
        why = (unloaded.error or "").removeprefix(f"--base {unloaded.base_name}: ")
        raise ConfigError(f"--base {unloaded.task_name}={unloaded.base_name}: {why}")
    if not service.workers:
        found = "no adapter it can serve (skipped below)" if service.broken else "no adapters"
        console.print(f"[yellow]{found} under {escape(', '.join(paths))} yet:[/yellow] one trained (or mended) "
                      "there is served from the first request that names it")
    for worker in service.workers.values():
        if worker.loaded is None:
            console.print(f"[red]base {escape(worker.base_name)} ({worker.task_name}) not loaded:[/red] "
                          f"{escape(worker.error or '')}")
        else:
            names = ", ".join(worker.loaded.adapters) or "no adapters"
            voices = base_voices(worker) if worker.task_name == SPEECH_TASK else []
            own = f"; its voice{'s' if len(voices) > 1 else ''}: {', '.join(voices)}" if voices else ""
            console.print(f"{worker.task_name} on {escape(worker.base_name)}: {escape(names)}{escape(own)}")
            for name, reason in worker.loaded.refused.items():
                console.print(f"[yellow]refused {escape(name)}:[/yellow] {escape(reason)}")
    for folder, reason in service.broken.items():
        console.print(f"[yellow]skipped {escape(folder)}:[/yellow] {escape(reason)}")
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"  # an IPv6 address in a URL
    scheme = "https" if tls_cert else "http"
    console.print(f"serving at {scheme}://{where}/ (OpenAI base_url {scheme}://{where}/v1)"
                  + ("; requests must carry the API key" if api_key else ""))
    if not api_key and not _loopback(host):
        console.print(f"[yellow]{escape(host)} is reachable from other machines and no --api-key is set:[/yellow] "
                      "anyone who reaches it can use the models and read the runs' files")
    elif api_key and not tls_cert and not _loopback(host):
        console.print(f"[yellow]{escape(host)} is reachable from other machines over plain HTTP:[/yellow] the API key "
                      "crosses the network readable by anyone on the way; serve HTTPS with --tls-cert and --tls-key "
                      "(or behind an HTTPS proxy)")
    try:
        app = create_app(service, max_body=max_upload * 1024 * 1024, api_key=api_key,
                         loopback_names_only=not api_key and _loopback(host))
        server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                               ssl_certfile=tls_cert, ssl_keyfile=tls_key))
        server.run(sockets=[listening])
    finally:
        service.stop()
        listening.close()


def _bound(host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port`` for the server, or one error saying why it cannot be."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port {port} is not a port number (1 to 65535)")
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except (socket.gaierror, UnicodeError):
        raise ConfigError(f"--host {host}: no such address or host name; use 127.0.0.1 (this machine only) or "
                          "0.0.0.0 (every network)") from None
    listening = socket.socket(family, socket.SOCK_STREAM)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: a restart reuses its port
    try:
        listening.bind((host, port))
    except OSError as exc:
        listening.close()
        why = {errno.EADDRINUSE: f"port {port} is in use by another program (another lorakit serve?); pass "
                                 "another --port",
               errno.EACCES: f"port {port} needs more privileges (ports below 1024); pass --port 8000 or above",
               errno.EADDRNOTAVAIL: f"{host} is not an address of this machine; use 127.0.0.1 or 0.0.0.0"}
        raise ConfigError(f"cannot listen on {host}:{port}: {why.get(exc.errno, exc.strerror)}") from None
    return listening


def _loopback(host: str) -> bool:
    """``host`` is this machine only (127.0.0.1, ::1, localhost)."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may well be reachable
        return False

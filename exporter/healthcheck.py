"""`python -m exporter.healthcheck`: the container's health check, following the exporter's own flags.

It reads the command line of the exporter process (PID 1 in a container; another with
``TLS_EXPORTER_HEALTHCHECK_PID``), so ``docker run IMAGE --web.listen-address=:9000`` is checked on
port 9000, over HTTPS when ``--web.config.file`` sets TLS. Flags given to the health check itself
win over those. Healthy means ``/-/healthy`` answered 200, or 401 when basic auth guards it (the
HTTP server answered; the check holds no password). With ``RequireAndVerifyClientCert`` set
``TLS_EXPORTER_HEALTHCHECK_CERT`` and ``TLS_EXPORTER_HEALTHCHECK_KEY`` to a client certificate.
Exit 0 healthy, 1 not.
"""

from __future__ import annotations

import argparse
import http.client
import os
import ssl
import sys
from collections.abc import Sequence
from pathlib import Path

from exporter.app import parse_listen
from exporter.support.errors import ConfigError
from exporter.web.webconfig import load_web_config

TIMEOUT = 5.0
HEALTHY = (200, 401)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m exporter.healthcheck", allow_abbrev=False, add_help=False)
    p.add_argument("--web.listen-address", dest="listen")
    p.add_argument("--web.config.file", dest="web_config_file")
    return p


def exporter_argv(pid: int) -> list[str]:
    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def _flags(own: Sequence[str], pid: int) -> argparse.Namespace:
    try:
        theirs, _ = _parser().parse_known_args(exporter_argv(pid))
    except OSError:
        theirs = argparse.Namespace(listen=None, web_config_file=None)
    mine, _ = _parser().parse_known_args(list(own))
    return argparse.Namespace(
        listen=mine.listen or theirs.listen or ":9632",
        web_config_file=mine.web_config_file or theirs.web_config_file,
    )


def _connect_host(host: str) -> str:
    """Where to reach a listener bound to ``host``: every address means loopback."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "::1"
    return host


def check(own: Sequence[str] = (), *, pid: int = 1) -> tuple[bool, str]:
    flags = _flags(own, pid)
    host, port = parse_listen(flags.listen)
    host = _connect_host(host)
    ctx: ssl.SSLContext | None = None
    if flags.web_config_file:
        web = load_web_config(flags.web_config_file)
        if web.tls is not None:
            # Liveness on the same machine: the server's identity is not in question here.
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            cert, key = os.environ.get("TLS_EXPORTER_HEALTHCHECK_CERT"), os.environ.get("TLS_EXPORTER_HEALTHCHECK_KEY")
            if cert and key:
                ctx.load_cert_chain(cert, key)
    scheme = "https" if ctx else "http"
    url = f"{scheme}://{'[' + host + ']' if ':' in host else host}:{port}/-/healthy"
    conn = (
        http.client.HTTPSConnection(host, port, timeout=TIMEOUT, context=ctx)
        if ctx
        else http.client.HTTPConnection(host, port, timeout=TIMEOUT)
    )
    try:
        conn.request("GET", "/-/healthy")
        status = conn.getresponse().status
    except (OSError, http.client.HTTPException) as exc:
        return False, f"{url}: {exc}"
    finally:
        conn.close()
    return status in HEALTHY, f"{url} answered {status}"


def main(argv: Sequence[str] | None = None) -> int:
    pid = int(os.environ.get("TLS_EXPORTER_HEALTHCHECK_PID", "1"))
    try:
        ok, detail = check(sys.argv[1:] if argv is None else argv, pid=pid)
    except (ConfigError, ValueError) as exc:
        errors = exc.errors if isinstance(exc, ConfigError) else [str(exc)]
        print("unhealthy: " + "; ".join(errors), file=sys.stderr)
        return 1
    print(("healthy: " if ok else "unhealthy: ") + detail, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

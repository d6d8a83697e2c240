"""Structured logs in logfmt (the Prometheus default) or JSON.

Call sites pass key/value pairs as ``extra={"fields": {...}}``; the formatter puts them after
time, level, logger and message.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import logging.handlers
import os
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

MAX_KEYS = 1024  # distinct lines tracked by the rate limit

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname.lower(),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    out.update(getattr(record, "fields", None) or {})
    if record.exc_info:
        out["error"] = logging.Formatter().formatException(record.exc_info)
    return out


def _logfmt_value(value: Any) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' ="\\\n\t'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{k}={_logfmt_value(v)}" for k, v in _fields(record).items())


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_fields(record), default=str)


class RateLimit(logging.Filter):
    """The same line (logger, level, message and fields, all identical) at most ``burst`` times per
    ``window`` seconds; the next one let through after a pause carries ``suppressed=N``, how many were
    dropped. A flood of identical errors (refused connections, a failing disk) costs a few
    lines a window, not gigabytes of log."""

    def __init__(self, burst: int = 5, window: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.burst, self.window, self.clock = burst, window, clock
        self._seen: OrderedDict[tuple[str, int, str, str], list[float]] = OrderedDict()  # start, count, dropped
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        fields = getattr(record, "fields", None) or {}
        key = (record.name, record.levelno, record.getMessage(), repr(sorted(fields.items(), key=lambda kv: kv[0])))
        now = self.clock()
        with self._lock:
            state = self._seen.get(key)
            if state is None or now - state[0] >= self.window:
                dropped = int(state[2]) if state is not None else 0
                self._seen[key] = [now, 1, 0]
                self._seen.move_to_end(key)
                while len(self._seen) > MAX_KEYS:
                    self._seen.popitem(last=False)
                if dropped:
                    fields = dict(getattr(record, "fields", None) or {})
                    fields["suppressed"] = dropped
                    record.fields = fields
                return True
            state[1] += 1
            if state[1] <= self.burst:
                return True
            state[2] += 1
            return False


SYSLOG_FACILITIES = tuple(sorted(logging.handlers.SysLogHandler.facility_names))
SYSLOG_IDENT = "tls-exporter"


def setup(
    level: str = "info", fmt: str = "logfmt", *, syslog: str | None = None, syslog_socket: str = "/dev/log"
) -> None:
    """Log to stderr, and with ``syslog`` (a facility such as ``local5``) to the local syslog socket
    too, with the ident ``tls-exporter[pid]``; both in the chosen format, both rate limited."""
    formatter = JSONFormatter() if fmt == "json" else LogfmtFormatter()
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if syslog is not None:
        facility = logging.handlers.SysLogHandler.facility_names[syslog]
        to_syslog = logging.handlers.SysLogHandler(address=syslog_socket, facility=facility)
        to_syslog.ident = f"{SYSLOG_IDENT}[{os.getpid()}]: "
        handlers.append(to_syslog)
    for handler in handlers:
        handler.addFilter(RateLimit())  # one each: a filter counts every record it sees
        handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = handlers
    root.setLevel(LEVELS.get(level, logging.INFO))
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)

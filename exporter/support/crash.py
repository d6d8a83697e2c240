"""Stack dumps of a crash, kept in ``--log.crash-dir`` and named in the log of the next start.

``faulthandler`` writes the Python stack of every thread when the process dies of SIGSEGV, SIGBUS,
SIGILL or SIGFPE (and of SIGABRT raised inside the process, where the exporter's own SIGABRT
handler is not in place yet). Its file must be open before the crash: each run opens
``tls-exporter.<pid>.crash`` at start and removes it at a clean stop while it is still empty. A
start finds the non-empty dumps of earlier runs, logs where each is and renames it
``*.crash.reported``, so that it is told once. SIGABRT sent to a running exporter (`kill -ABRT`)
is a stop with a dump: the stack of every thread is written, then the exporter stops as for SIGTERM.
"""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import os
from pathlib import Path
from typing import TextIO

log = logging.getLogger(__name__)
SUFFIX = ".crash"


class CrashDumps:
    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / f"tls-exporter.{os.getpid()}{SUFFIX}"
        self._file: TextIO | None = None

    def arm(self) -> None:
        """Create the directory if needed, open this run's dump file and enable faulthandler on it."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("w", encoding="utf-8")
        faulthandler.enable(file=self._file, all_threads=True)

    def report_earlier(self) -> list[Path]:
        """Log every dump an earlier run left (once: each is renamed ``*.reported``); the list."""
        found = []
        for dump in sorted(self.directory.glob(f"tls-exporter.*{SUFFIX}")):
            if dump == self.path:
                continue
            try:
                size = dump.stat().st_size
            except OSError:
                continue
            if size == 0:  # a run that stopped without a clean exit but did not crash (SIGKILL)
                with contextlib.suppress(OSError):
                    dump.unlink()
                continue
            reported = dump.with_name(dump.name + ".reported")
            with contextlib.suppress(OSError):
                dump.rename(reported)
            log.warning(
                "an earlier run crashed: its stack dump is kept",
                extra={"fields": {"dump": str(reported), "bytes": size}},
            )
            found.append(reported)
        return found

    def dump_now(self, reason: str) -> None:
        """Write the stack of every thread now (SIGABRT sent to the process), and keep the file."""
        if self._file is None:
            return
        self._file.write(f"tls-exporter stopped by {reason}; the stack of every thread:\n")
        self._file.flush()
        faulthandler.dump_traceback(file=self._file, all_threads=True)
        self._file.flush()
        log.warning("stack dump written", extra={"fields": {"reason": reason, "dump": str(self.path)}})

    def disarm(self) -> None:
        """At a clean stop: no more dumps; this run's file goes when nothing was written to it."""
        if self._file is None:
            return
        faulthandler.disable()
        self._file.close()
        self._file = None
        with contextlib.suppress(OSError):
            if self.path.stat().st_size == 0:
                self.path.unlink()

"""A small SMTP server on loopback that keeps every message it receives (RFC 5321 subset).

Enough for Alertmanager's and the report scheduler's mail: EHLO/HELO, optional AUTH PLAIN and
LOGIN (recorded, any password accepted unless ``password`` is set), MAIL, RCPT, DATA with
dot-unstuffing, RSET, NOOP, QUIT. No STARTTLS: clients must be told not to require it.
"""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.message import EmailMessage

from servers import Listener


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    data: bytes
    auth: str | None  # the user name that authenticated, if any

    @property
    def message(self) -> EmailMessage:
        msg = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        return msg

    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        return "" if part is None else str(part.get_content())  # type: ignore[attr-defined]

    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        return "" if part is None else str(part.get_content())  # type: ignore[attr-defined]


@dataclass
class SmtpSink:
    password: str | None = None
    fail_next: int = 0  # answer the next N DATA commands with 451 (a failed delivery)
    mails: list[Mail] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _listener: Listener | None = None
    _thread: threading.Thread | None = None

    def snapshot(self) -> list[Mail]:
        with self.lock:
            return list(self.mails)

    def start(self) -> SmtpSink:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            listener = loop.run_until_complete(Listener(self._session).start())
            self._listener, self.port = listener, listener.port
            ready.set()
            loop.run_forever()
            loop.run_until_complete(listener.close())
            loop.close()

        self._thread = threading.Thread(target=run, name="smtp-sink", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def reply(line: str) -> None:
            writer.write(line.encode() + b"\r\n")
            await writer.drain()

        sender, recipients, user = "", [], None
        try:
            await reply("220 sink.test ESMTP test sink")
            while line := await reader.readline():
                command = line.decode(errors="replace").rstrip("\r\n")
                verb = command.split(" ", 1)[0].upper()
                arg = command[len(verb) :].strip()
                if verb in ("EHLO", "HELO"):
                    if verb == "EHLO":
                        await reply("250-sink.test")
                        await reply("250-AUTH PLAIN LOGIN")
                        await reply("250 8BITMIME")
                    else:
                        await reply("250 sink.test")
                elif verb == "AUTH":
                    user = await self._auth(arg, reader, reply)
                    if user is None:
                        await reply("535 5.7.8 authentication failed")
                    else:
                        await reply("235 2.7.0 authenticated")
                elif verb == "MAIL":
                    sender, recipients = arg.split(":", 1)[1].strip().split(" ")[0].strip("<>"), []
                    await reply("250 OK")
                elif verb == "RCPT":
                    recipients.append(arg.split(":", 1)[1].strip().strip("<>"))
                    await reply("250 OK")
                elif verb == "DATA":
                    await reply("354 end with <CRLF>.<CRLF>")
                    data = await self._data(reader)
                    with self.lock:
                        failing = self.fail_next > 0
                        if failing:
                            self.fail_next -= 1
                        else:
                            self.mails.append(Mail(sender, recipients, data, user))
                    await reply("451 4.3.0 try again later" if failing else "250 OK queued")
                elif verb == "RSET":
                    sender, recipients = "", []
                    await reply("250 OK")
                elif verb == "NOOP":
                    await reply("250 OK")
                elif verb == "QUIT":
                    await reply("221 bye")
                    break
                else:
                    await reply("502 5.5.2 command not implemented")
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client left; the listener closes the connection

    async def _auth(self, arg: str, reader: asyncio.StreamReader, send: Callable[[str], Awaitable[None]]) -> str | None:
        mechanism, _, initial = arg.partition(" ")
        if mechanism.upper() == "PLAIN":
            if not initial:
                await send("334 ")
                initial = (await reader.readline()).decode().strip()
            _, user, password = base64.b64decode(initial).decode().split("\0")
        elif mechanism.upper() == "LOGIN":
            await send("334 VXNlcm5hbWU6")
            user = base64.b64decode((await reader.readline()).strip()).decode()
            await send("334 UGFzc3dvcmQ6")
            password = base64.b64decode((await reader.readline()).strip()).decode()
        else:
            return None
        return user if self.password is None or password == self.password else None

    @staticmethod
    async def _data(reader: asyncio.StreamReader) -> bytes:
        lines = []
        while True:
            line = await reader.readline()
            if line in (b".\r\n", b".\n", b""):
                break
            lines.append(line[1:] if line.startswith(b"..") else line)
        return b"".join(lines)

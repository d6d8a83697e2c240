"""Text from certificates and servers, made safe for a terminal or a UTF-8 stream.

A subject can hold ESC, CR, LF or bytes that are not UTF-8: printed raw they would drive the
reader's terminal or forge lines of a report. They are shown as visible escapes instead.
"""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, and lone surrogates (undecodable bytes of a file name or a subject).
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # a byte that os.fsdecode could not decode: show the byte
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(text: str) -> str:
    """``text`` with every control character and lone surrogate written as an escape."""
    return _UNSAFE.sub(_escape, text)


def utf8_safe(text: str) -> str:
    """``text`` unchanged when it can be written as UTF-8, else with its lone surrogates escaped."""
    if text.isascii():
        return text
    try:
        text.encode()
    except UnicodeEncodeError:
        return re.sub(r"[\ud800-\udfff]", _escape, text)
    return text

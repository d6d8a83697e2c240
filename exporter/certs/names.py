"""Subject and issuer names as text, also when cryptography refuses to decode them.

cryptography rejects a T61String (TeletexString) holding 8-bit bytes, so ``cert.subject`` raises
for certificates that old CAs and appliances still issue; the rest of such a certificate loads
fine. Then the Name is read here straight from the DER of the TBSCertificate, each value decoded
best-effort by its string type (T61 as Latin-1, BMPString as UTF-16, UniversalString as UTF-32,
anything undecodable as Latin-1) and every control character shown as an escape.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import NameOID

from exporter.support.textsafe import terminal_safe

# RFC 4514 short names, as cryptography's rfc4514_string writes them.
_SHORT = {
    "2.5.4.3": "CN",
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.9": "STREET",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "0.9.2342.19200300.100.1.1": "UID",
    "0.9.2342.19200300.100.1.25": "DC",
}
_CODECS = {0x0C: "utf-8", 0x1E: "utf-16-be", 0x1C: "utf-32-be"}  # others: Latin-1 (T61, Printable, IA5, ...)


class _DER:
    """Just enough DER to walk a TBSCertificate: tag, length, contents."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def read(self) -> tuple[int, bytes]:
        data, pos = self.data, self.pos
        if pos + 2 > len(data):
            raise ValueError("truncated DER")
        tag, length = data[pos], data[pos + 1]
        pos += 2
        if length & 0x80:
            count = length & 0x7F
            if count == 0 or count > 4 or pos + count > len(data):
                raise ValueError("bad DER length")
            length = int.from_bytes(data[pos : pos + count], "big")
            pos += count
        if pos + length > len(data):
            raise ValueError("truncated DER")
        self.pos = pos + length
        return tag, data[pos : pos + length]

    @property
    def done(self) -> bool:
        return self.pos >= len(self.data)


def _oid(body: bytes) -> str:
    if not body:
        raise ValueError("empty OID")
    parts = [*divmod(body[0], 40)] if body[0] < 80 else [2, body[0] - 80]
    value = 0
    for byte in body[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(value)
            value = 0
    return ".".join(map(str, parts))


def _text(tag: int, body: bytes) -> str:
    codec = _CODECS.get(tag, "latin-1")
    try:
        text = body.decode(codec)
    except UnicodeDecodeError:
        text = body.decode("latin-1")
    return text


def _rdns(name_der: bytes) -> list[list[tuple[str, str]]]:
    """The RDNs of a DER Name (its contents), each a list of (oid, text)."""
    rdns = []
    outer = _DER(name_der)
    while not outer.done:
        _, rdn = outer.read()  # SET
        attrs = []
        inner = _DER(rdn)
        while not inner.done:
            _, atv = inner.read()  # SEQUENCE { type, value }
            pair = _DER(atv)
            _, oid = pair.read()
            tag, value = pair.read()
            attrs.append((_oid(oid), _text(tag, value)))
        rdns.append(attrs)
    return rdns


def _names_der(cert: x509.Certificate) -> tuple[bytes, bytes]:
    """(issuer, subject) Name contents from the TBSCertificate."""
    _, tbs = _DER(cert.tbs_certificate_bytes).read()
    fields = _DER(tbs)
    tag, _ = fields.read()
    if tag == 0xA0:  # [0] version: the serial follows
        fields.read()
    fields.read()  # signature AlgorithmIdentifier
    _, issuer = fields.read()
    fields.read()  # validity
    _, subject = fields.read()
    return issuer, subject


def _escape_value(value: str) -> str:
    out = value.replace("\\", "\\\\").replace(",", "\\,").replace("+", "\\+").replace('"', '\\"')
    return out.replace("<", "\\<").replace(">", "\\>").replace(";", "\\;")


def _rfc4514(rdns: list[list[tuple[str, str]]]) -> str:
    rdn_texts = ("+".join(f"{_SHORT.get(oid, oid)}={_escape_value(v)}" for oid, v in rdn) for rdn in reversed(rdns))
    return terminal_safe(",".join(rdn_texts))


def _cn(rdns: list[list[tuple[str, str]]]) -> str:
    return terminal_safe(next((v for rdn in rdns for oid, v in rdn if oid == NameOID.COMMON_NAME.dotted_string), ""))


def name_texts(cert: x509.Certificate) -> tuple[str, str, str, str]:
    """(subject, issuer, subject CN, issuer CN) as text, whatever string types the names use."""
    try:
        subject, issuer = cert.subject, cert.issuer
        return subject.rfc4514_string(), issuer.rfc4514_string(), _common_name(subject), _common_name(issuer)
    except ValueError:
        pass
    issuer_der, subject_der = _names_der(cert)
    s, i = _rdns(subject_der), _rdns(issuer_der)
    return _rfc4514(s), _rfc4514(i), _cn(s), _cn(i)


def _common_name(name: x509.Name) -> str:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = attrs[0].value if attrs else ""
    return value if isinstance(value, str) else value.decode("utf-8", "replace")

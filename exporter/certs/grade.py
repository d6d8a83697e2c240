"""An SSL-Labs-style security grade (after the SSL Server Rating Guide; rules in docs/grade.md).

Three category scores, weighted 30/30/40: protocol support ((best + worst) / 2), key exchange
(the weakest of the certificate key and the ephemeral parameters seen) and cipher strength
((strongest + weakest) / 2); a zero in any category makes the score zero. The score gives a
letter (>= 80 A, >= 65 B, >= 50 C, >= 35 D, >= 20 E, else F), then caps lower it. ``T`` (not
trusted) and ``M`` (name mismatch) replace the letter, while ``score`` and ``if_trusted`` still say
what the server would get if trusted. A+ needs no cap, no warning and HSTS max-age >= 180 days;
A- is an A with warnings.

Only what one modern handshake and the version probes show is judged: suites the server
accepts but never picks are not enumerated, and vulnerability tests (Heartbleed, ROBOT,
renegotiation, compression) are not run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from exporter.results import normalize_version

GRADES = ("A+", "A", "A-", "B", "C", "D", "E", "F")
PROTOCOL_SCORE = {"SSLv2": 0, "SSLv3": 80, "TLSv1.0": 90, "TLSv1.1": 95, "TLSv1.2": 100, "TLSv1.3": 100}
HSTS_LONG = 15552000  # 180 days: SSL Labs' "long max-age"
TRUST_ISSUES = ("expired", "not_yet_valid", "untrusted_root", "self_signed", "revoked")
EC_KINDS = frozenset({"ec", "ecdhe", "ed25519", "ed448", "x25519", "x448"})
_TLS13_SUITES = frozenset(
    {
        "TLS_AES_128_GCM_SHA256",
        "TLS_AES_256_GCM_SHA384",
        "TLS_CHACHA20_POLY1305_SHA256",
        "TLS_AES_128_CCM_SHA256",
        "TLS_AES_128_CCM_8_SHA256",
    }
)
_MAX_AGE = re.compile(r"""(?:^|;)\s*max-age\s*=\s*"?(\d+)"?\s*(?:;|$)""", re.IGNORECASE)


@dataclass(frozen=True, slots=True, kw_only=True)
class GradeInput:
    protocols: frozenset[str]  # versions accepted ("SSLv3", "TLSv1.0" ... "TLSv1.3"); at least the negotiated one
    cipher: str  # the suite a modern client negotiated (OpenSSL or IANA name); "" if unknown
    cipher_bits: tuple[int, ...]  # symmetric strength of every suite seen (negotiated and probed)
    suites: tuple[str, ...] = ()  # names of the other suites seen (probes), for RC4 / 3DES / export / NULL
    key_type: str  # leaf key: rsa | ec | dsa | ed25519 | ed448
    key_bits: int
    ephemeral: tuple[tuple[str, int], ...] = ()  # ("ECDHE", 253), ("DHE", 1024) seen in key exchanges
    signature_hashes: tuple[str, ...] = ()  # hashes signing the leaf and the intermediates
    weak_hashes: tuple[str, ...] = ("md5", "sha1")  # the profile's weak_signature_hashes
    key_weak: bool = False  # the leaf key is below the profile's minimum
    chain_issues: frozenset[str] = frozenset()
    hsts: str | None = None  # the Strict-Transport-Security header (https only)


@dataclass(frozen=True, slots=True, kw_only=True)
class Grade:
    grade: str  # A+ ... F, or T / M
    score: float  # 0-100, the score if trusted
    if_trusted: str  # the letter without T / M
    protocol_score: float
    key_exchange_score: float
    cipher_score: float
    reasons: tuple[str, ...]  # every cap, special grade and warning, e.g. "cap B: TLS 1.0 accepted"


def hsts_max_age(header: str | None) -> int | None:
    if not header:
        return None
    m = _MAX_AGE.search(header.strip())
    return int(m.group(1)) if m else None


def key_score(kind: str, bits: int) -> int:
    if kind.lower() in EC_KINDS:
        return 20 if bits < 110 else 40 if bits < 123 else 80 if bits < 163 else 90 if bits < 225 else 100
    return 20 if bits < 512 else 40 if bits < 1024 else 80 if bits < 2048 else 90 if bits < 4096 else 100


def cipher_bits_score(bits: int) -> int:
    return 0 if bits <= 0 else 20 if bits < 128 else 80 if bits < 256 else 100


def letter(score: float) -> str:
    for floor, grade in ((80, "A"), (65, "B"), (50, "C"), (35, "D"), (20, "E")):
        if score >= floor:
            return grade
    return "F"


def forward_secret(cipher: str) -> bool:
    name = cipher.upper()
    return name in _TLS13_SUITES or any(k in name for k in ("ECDHE", "DHE", "EDH"))


def aead(cipher: str) -> bool:
    name = cipher.upper()
    return name in _TLS13_SUITES or any(k in name for k in ("GCM", "CHACHA20", "CCM"))


def _has(names: Iterable[str], *needles: str) -> bool:
    return any(n in name.upper() for name in names for n in needles)


def grade(f: GradeInput) -> Grade:
    protocols = {normalize_version(p) for p in f.protocols} & PROTOCOL_SCORE.keys()
    caps: list[tuple[str, str]] = []
    warnings: list[str] = []

    # -- scores ---------------------------------------------------------------------------------
    ps = [PROTOCOL_SCORE[p] for p in protocols] or [0]
    protocol = (max(ps) + min(ps)) / 2
    kx_inputs = [(f.key_type, f.key_bits), *f.ephemeral]
    suites = (f.cipher, *f.suites) if f.cipher else f.suites
    anonymous = _has(suites, "ADH", "AECDH", "_ANON_")
    kx = 0 if anonymous else min(key_score(k, b) for k, b in kx_inputs)
    export = _has(suites, "EXP")
    if export:
        kx = min(kx, 40)
    cs = [cipher_bits_score(b) for b in f.cipher_bits] or [0]
    cipher = (max(cs) + min(cs)) / 2
    score = 0.0 if 0 in (protocol, kx, cipher) else round(0.3 * protocol + 0.3 * kx + 0.4 * cipher, 1)

    # -- caps -----------------------------------------------------------------------------------
    if "SSLv2" in protocols:
        caps.append(("F", "SSL 2.0 accepted"))
    if export:
        caps.append(("F", "export cipher suites"))
    if anonymous:
        caps.append(("F", "anonymous key exchange"))
    if f.cipher_bits and min(f.cipher_bits) < 112:
        caps.append(("F", "cipher suite below 112 bits"))
    hashes = set(f.signature_hashes)
    if hashes & {"md5", "md2"}:
        caps.append(("F", "MD5 certificate signature"))
    if kx <= 40:
        caps.append(("F", "insecure key exchange (key below 1024 bits)"))
    elif kx <= 80:
        caps.append(("B", "weak key exchange (key below 2048 bits)"))
    elif f.key_weak:
        caps.append(("B", "certificate key below the profile's minimum"))
    if "SSLv3" in protocols:
        if max(protocols, key=PROTOCOL_SCORE.__getitem__) == "SSLv3":
            caps.append(("F", "SSL 3.0 is the best protocol"))
        caps.append(("C", "SSL 3.0 accepted (POODLE)"))
    legacy = sorted(protocols & {"TLSv1.0", "TLSv1.1"})
    if legacy:
        caps.append(("B", f"{' and '.join(v.replace('v', ' ') for v in legacy)} accepted"))
    if not protocols & {"TLSv1.2", "TLSv1.3"}:
        caps.append(("C", "no TLS 1.2 or 1.3"))
    if _has(suites, "RC4"):
        caps.append(("C" if protocols & {"TLSv1.1", "TLSv1.2"} else "B", "RC4 cipher suites"))
    if _has(suites, "DES-CBC3", "3DES") and protocols & {"TLSv1.1", "TLSv1.2", "TLSv1.3"}:
        caps.append(("C", "64-bit block cipher (3DES) with TLS 1.1+ (SWEET32)"))
    if f.cipher and not forward_secret(f.cipher):
        caps.append(("B", "no forward secrecy"))
    if f.cipher and not aead(f.cipher):
        caps.append(("B", "no AEAD cipher suite"))
    if "incomplete" in f.chain_issues:
        caps.append(("B", "incomplete certificate chain"))

    # -- warnings -------------------------------------------------------------------------------
    if "TLSv1.3" not in protocols:
        warnings.append("TLS 1.3 not supported")
    if "wrong_order" in f.chain_issues:
        warnings.append("certificate chain sent in the wrong order")

    # -- trust ----------------------------------------------------------------------------------
    special: list[tuple[str, str]] = []
    if "hostname_mismatch" in f.chain_issues:
        special.append(("M", "certificate does not match the name"))
    for issue in TRUST_ISSUES:
        if issue in f.chain_issues:
            special.append(("T", f"certificate chain {issue.replace('_', ' ')}"))
    weak_sig = sorted(hashes & (set(f.weak_hashes) - {"md5", "md2"}))
    if weak_sig:
        special.append(("T", f"weak signature hash {', '.join(weak_sig)}"))

    result = letter(score)
    for cap, _ in caps:
        if GRADES.index(cap) > GRADES.index(result):
            result = cap
    max_age = hsts_max_age(f.hsts)
    hsts_note: list[str] = []
    if result == "A" and not caps:
        if warnings:
            result = "A-"
        elif max_age is not None and max_age >= HSTS_LONG:
            result = "A+"
        else:
            hsts_note.append("no A+: HSTS max-age below 180 days" if max_age is not None else "no A+: no HSTS")
    reasons = (
        [f"{g}: {r}" for g, r in special]
        + [f"cap {g}: {r}" for g, r in caps]
        + [f"warning: {w}" for w in warnings]
        + hsts_note
    )
    return Grade(
        grade=special[0][0] if special else result,
        score=score,
        if_trusted=result,
        protocol_score=protocol,
        key_exchange_score=float(kx),
        cipher_score=cipher,
        reasons=tuple(reasons),
    )

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from exporter.certs.grade import GradeInput, aead, forward_secret, grade, hsts_max_age, key_score, letter

MODERN = GradeInput(
    protocols=frozenset({"TLSv1.2", "TLSv1.3"}),
    cipher="TLS_AES_256_GCM_SHA384",
    cipher_bits=(256,),
    key_type="ec",
    key_bits=256,
    signature_hashes=("sha256",),
)
YEAR = "max-age=31536000; includeSubDomains"


def g(**changes: Any) -> tuple[str, float, str]:
    r = grade(dataclasses.replace(MODERN, **changes))
    return r.grade, r.score, r.if_trusted


# (case, changes, grade, score, a reason that must be given)
CASES: list[tuple[str, dict[str, Any], str, float, str | None]] = [
    ("modern, no HSTS", {}, "A", 100.0, "no A+: no HSTS"),
    ("modern + HSTS 1 year", {"hsts": YEAR}, "A+", 100.0, None),
    ("HSTS exactly 180 days", {"hsts": "max-age=15552000"}, "A+", 100.0, None),
    ("HSTS short", {"hsts": "max-age=86400"}, "A", 100.0, "no A+: HSTS max-age below 180 days"),
    (
        "no TLS 1.3 is a warning",
        {"protocols": frozenset({"TLSv1.2"}), "hsts": YEAR},
        "A-",
        100.0,
        "warning: TLS 1.3 not supported",
    ),
    (
        "TLS 1.0 accepted",
        {"protocols": frozenset({"TLSv1.0", "TLSv1.2", "TLSv1.3"})},
        "B",
        98.5,
        "cap B: TLS 1.0 accepted",
    ),
    (
        "TLS 1.1 accepted",
        {"protocols": frozenset({"TLSv1.1", "TLSv1.2", "TLSv1.3"})},
        "B",
        99.2,
        "cap B: TLS 1.1 accepted",
    ),
    (
        "TLS 1.0 only, CBC, RSA-2048",
        {"protocols": frozenset({"TLSv1"}), "cipher": "ECDHE-RSA-AES256-SHA", "key_type": "rsa", "key_bits": 2048},
        "C",
        94.0,
        "cap C: no TLS 1.2 or 1.3",
    ),
    (
        "SSL 3.0 beside TLS 1.2",
        {"protocols": frozenset({"SSLv3", "TLSv1.2", "TLSv1.3"})},
        "C",
        97.0,
        "cap C: SSL 3.0 accepted (POODLE)",
    ),
    (
        "SSL 3.0 only",
        {"protocols": frozenset({"SSLv3"}), "cipher": "AES128-SHA", "cipher_bits": (128,)},
        "F",
        86.0,
        "cap F: SSL 3.0 is the best protocol",
    ),
    ("RSA-2048", {"key_type": "rsa", "key_bits": 2048}, "A", 97.0, None),
    ("RSA-4096", {"key_type": "rsa", "key_bits": 4096}, "A", 100.0, None),
    (
        "RSA-1536 weak",
        {"key_type": "rsa", "key_bits": 1536},
        "B",
        94.0,
        "cap B: weak key exchange (key below 2048 bits)",
    ),
    ("RSA-1024 weak", {"key_type": "rsa", "key_bits": 1024}, "B", 94.0, "cap B: weak key exchange"),
    ("RSA-1000 insecure", {"key_type": "rsa", "key_bits": 1000}, "F", 82.0, "cap F: insecure key exchange"),
    (
        "below the profile minimum",
        {"key_type": "rsa", "key_bits": 2048, "key_weak": True},
        "B",
        97.0,
        "cap B: certificate key below the profile's minimum",
    ),
    (
        "DHE-1024 parameters",
        {"ephemeral": (("DHE", 1024),), "cipher": "DHE-RSA-AES256-GCM-SHA384"},
        "B",
        94.0,
        "cap B: weak key exchange",
    ),
    (
        "DHE-768 parameters",
        {"ephemeral": (("DHE", 768),), "cipher": "DHE-RSA-AES256-GCM-SHA384"},
        "F",
        82.0,
        "cap F: insecure key exchange",
    ),
    ("X25519", {"ephemeral": (("ECDHE", 253),)}, "A", 100.0, None),
    ("no forward secrecy", {"cipher": "AES256-GCM-SHA384"}, "B", 100.0, "cap B: no forward secrecy"),
    ("no AEAD", {"cipher": "ECDHE-ECDSA-AES128-SHA", "cipher_bits": (128,)}, "B", 92.0, "cap B: no AEAD cipher suite"),
    ("mixed 256/128-bit suites", {"cipher_bits": (256, 128)}, "A", 96.0, None),
    ("56-bit suite", {"cipher_bits": (256, 56)}, "F", 84.0, "cap F: cipher suite below 112 bits"),
    ("RC4 with TLS 1.2", {"suites": ("ECDHE-RSA-RC4-SHA",)}, "C", 100.0, "cap C: RC4 cipher suites"),
    (
        "RC4 without TLS 1.1/1.2",
        {"protocols": frozenset({"TLSv1.3"}), "suites": ("RC4-SHA",)},
        "B",
        100.0,
        "cap B: RC4 cipher suites",
    ),
    (
        "3DES with TLS 1.2",
        {"suites": ("ECDHE-RSA-DES-CBC3-SHA",), "cipher_bits": (256, 168)},
        "C",
        96.0,
        "cap C: 64-bit block cipher (3DES) with TLS 1.1+ (SWEET32)",
    ),
    ("export suites", {"suites": ("EXP-RC4-MD5",), "cipher_bits": (256, 40)}, "F", 66.0, "cap F: export cipher suites"),
    ("anonymous key exchange", {"suites": ("ADH-AES256-GCM-SHA384",)}, "F", 0.0, "cap F: anonymous key exchange"),
    ("MD5 signature", {"signature_hashes": ("md5", "sha256")}, "F", 100.0, "cap F: MD5 certificate signature"),
    ("SHA-1 signature (profile weak)", {"signature_hashes": ("sha1",)}, "T", 100.0, "T: weak signature hash sha1"),
    ("SHA-1 allowed by the profile", {"signature_hashes": ("sha1",), "weak_hashes": ("md5",)}, "A", 100.0, None),
    ("expired", {"chain_issues": frozenset({"expired"}), "hsts": YEAR}, "T", 100.0, "T: certificate chain expired"),
    ("not yet valid", {"chain_issues": frozenset({"not_yet_valid"})}, "T", 100.0, "T: certificate chain not yet valid"),
    (
        "untrusted root",
        {"chain_issues": frozenset({"untrusted_root"})},
        "T",
        100.0,
        "T: certificate chain untrusted root",
    ),
    ("self-signed", {"chain_issues": frozenset({"self_signed"})}, "T", 100.0, "T: certificate chain self signed"),
    ("revoked", {"chain_issues": frozenset({"revoked"})}, "T", 100.0, "T: certificate chain revoked"),
    (
        "name mismatch",
        {"chain_issues": frozenset({"hostname_mismatch"})},
        "M",
        100.0,
        "M: certificate does not match the name",
    ),
    (
        "mismatch and untrusted",
        {"chain_issues": frozenset({"hostname_mismatch", "untrusted_root"})},
        "M",
        100.0,
        "T: certificate chain untrusted root",
    ),
    (
        "incomplete chain",
        {"chain_issues": frozenset({"incomplete"})},
        "B",
        100.0,
        "cap B: incomplete certificate chain",
    ),
    (
        "wrong order",
        {"chain_issues": frozenset({"wrong_order"}), "hsts": YEAR},
        "A-",
        100.0,
        "warning: certificate chain sent in the wrong order",
    ),
]


@pytest.mark.parametrize(("changes", "expected", "score", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_grade_rules(changes: dict[str, Any], expected: str, score: float, reason: str | None) -> None:
    r = grade(dataclasses.replace(MODERN, **changes))
    assert (r.grade, r.score) == (expected, score)
    if reason is not None:
        assert any(x.startswith(reason) for x in r.reasons), r.reasons
    if expected in ("A+",):
        assert r.reasons == ()


def test_t_and_m_keep_the_grade_if_trusted() -> None:
    assert g(chain_issues=frozenset({"expired"}), hsts=YEAR) == ("T", 100.0, "A+")
    assert g(chain_issues=frozenset({"hostname_mismatch"}), protocols=frozenset({"TLSv1.0", "TLSv1.2"})) == (
        "M",
        98.5,
        "B",
    )


def test_category_scores_and_zero_rule() -> None:
    r = grade(
        dataclasses.replace(
            MODERN, protocols=frozenset({"TLSv1.0", "TLSv1.3"}), key_type="rsa", key_bits=2048, cipher_bits=(256, 128)
        )
    )
    assert (r.protocol_score, r.key_exchange_score, r.cipher_score, r.score) == (95.0, 90.0, 90.0, 91.5)
    zero = grade(dataclasses.replace(MODERN, cipher_bits=(0,)))
    assert (zero.cipher_score, zero.score, zero.grade) == (0.0, 0.0, "F")


@pytest.mark.parametrize(
    ("score", "expected"),
    [
        (100, "A"),
        (80, "A"),
        (79.9, "B"),
        (65, "B"),
        (64.9, "C"),
        (50, "C"),
        (35, "D"),
        (20, "E"),
        (19.9, "F"),
        (0, "F"),
    ],
)
def test_letters(score: float, expected: str) -> None:
    assert letter(score) == expected


@pytest.mark.parametrize(
    ("header", "age"),
    [
        (YEAR, 31536000),
        ("includeSubDomains; max-age=100; preload", 100),
        ('max-age="15552000"', 15552000),
        ("MAX-AGE=5", 5),
        ("max-age=abc", None),
        ("", None),
        (None, None),
    ],
)
def test_hsts_max_age(header: str | None, age: int | None) -> None:
    assert hsts_max_age(header) == age


def test_key_scores_and_suite_properties() -> None:
    assert [key_score("rsa", b) for b in (256, 512, 1024, 2048, 4096)] == [20, 40, 80, 90, 100]
    assert [key_score("ec", b) for b in (100, 112, 160, 224, 256)] == [20, 40, 80, 90, 100]
    assert key_score("ed25519", 256) == 100
    assert forward_secret("TLS_CHACHA20_POLY1305_SHA256") and aead("TLS_CHACHA20_POLY1305_SHA256")
    assert forward_secret("ECDHE-RSA-AES128-SHA") and not aead("ECDHE-RSA-AES128-SHA")
    assert not forward_secret("AES128-GCM-SHA256") and aead("AES128-GCM-SHA256")
    assert forward_secret("TLS_DHE_RSA_WITH_AES_128_GCM_SHA256")

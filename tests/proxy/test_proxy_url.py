"""proxy_url parsing (config and environment), the password never shown, and NO_PROXY matching."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.config import parse_config
from exporter.support.errors import ConfigError
from exporter.support.proxyurl import ProxyScheme, ProxyURL, bypass, env_proxy, parse_proxy_url


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://proxy.corp:3128", ProxyURL(scheme=ProxyScheme.HTTP, host="proxy.corp", port=3128)),
        ("HTTP://192.0.2.10:8080/", ProxyURL(scheme=ProxyScheme.HTTP, host="192.0.2.10", port=8080)),
        ("socks5://[::1]:1080", ProxyURL(scheme=ProxyScheme.SOCKS5, host="::1", port=1080)),
        (
            "socks5://me%40corp:p%3Aw@gw:1080",
            ProxyURL(scheme=ProxyScheme.SOCKS5, host="gw", port=1080, username="me@corp", password="p:w"),
        ),
        ("http://user@gw:3128", ProxyURL(scheme=ProxyScheme.HTTP, host="gw", port=3128, username="user", password="")),
    ],
)
def test_valid(text: str, expected: ProxyURL) -> None:
    parsed = parse_proxy_url(text)
    assert parsed == expected
    assert parsed.password == expected.password  # not part of the repr, so compared on its own


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("proxy:3128", "invalid proxy URL (no scheme: use http://host:port or socks5://host:port"),
        ("https://proxy:3128", "unsupported proxy scheme 'https'"),
        ("socks4://proxy:1080", "unsupported proxy scheme 'socks4'"),
        ("socks5h://proxy:1080", "use socks5:// (names are always resolved by the proxy)"),
        ("http://proxy", "the proxy URL needs a port (http://host:port)"),
        ("http://proxy:0", "invalid proxy port '0' (1-65535)"),
        ("http://proxy:99999", "invalid proxy port '99999' (1-65535)"),
        ("http://proxy:31x", "invalid proxy port '31x' (1-65535)"),
        ("http://:3128", "the proxy URL has no host"),
        ("http://bad_host:3128", "invalid proxy host 'bad_host'"),
        ("http://999.1.1.1:3128", "invalid IPv4 address '999.1.1.1' in the proxy URL"),
        ("http://[::g]:3128", "invalid IPv6 address '::g' in the proxy URL"),
        ("http://::1:3128", "invalid proxy host"),
        ("http://proxy:3128/path", "a proxy URL has no path, query or fragment"),
        ("http://proxy:3128?x=1", "a proxy URL has no path, query or fragment"),
        ("http://:secret@proxy:3128", "empty user name in the proxy URL"),
        ("socks5://u:" + "p" * 256 + "@gw:1080", "SOCKS5 user name and password are at most 255 bytes each"),
    ],
)
def test_invalid(text: str, error: str) -> None:
    with pytest.raises(ValueError) as failed:
        parse_proxy_url(text)
    assert str(failed.value).startswith(error)
    assert "secret" not in str(failed.value)


def test_the_password_is_never_shown() -> None:
    proxy = parse_proxy_url("http://alice:hunter2@proxy:3128")
    assert str(proxy) == "http://alice:***@proxy:3128"
    assert "hunter2" not in repr(proxy)
    assert str(parse_proxy_url("socks5://[::1]:1080")) == "socks5://[::1]:1080"


def test_config_key(tmp_path: Path) -> None:
    config = parse_config({"profiles": {"default": {"proxy_url": "socks5://gw:1080"}, "direct": {}}}, base_dir=tmp_path)
    assert config.profile("default").proxy_url == ProxyURL(scheme=ProxyScheme.SOCKS5, host="gw", port=1080)
    assert config.profile("direct").proxy_url is None


def test_config_errors(tmp_path: Path) -> None:
    raw = {
        "profiles": {
            "a": {"proxy_url": "ftp://u:topsecret@gw:21"},
            "b": {"proxy_url": 3128},
            "c": {"proxy_url": ""},
            "d": {"proxy_url": "http://gw"},
        }
    }
    with pytest.raises(ConfigError) as failed:
        parse_config(raw, base_dir=tmp_path)
    assert failed.value.errors == [
        "profiles.a.proxy_url: unsupported proxy scheme 'ftp' (use http://host:port or socks5://host:port, "
        "with an optional user:password@)",
        "profiles.b.proxy_url: expected a string",
        "profiles.c.proxy_url: must not be empty",
        "profiles.d.proxy_url: the proxy URL needs a port (http://host:port)",
    ]


@pytest.mark.parametrize(
    ("environ", "proxy", "variable"),
    [
        ({}, None, ""),
        ({"HTTP_PROXY": "gw:3128"}, "http://gw:3128", "HTTP_PROXY"),
        ({"HTTP_PROXY": "http://upper:1", "http_proxy": "http://lower:2"}, "http://lower:2", "http_proxy"),
        ({"HTTPS_PROXY": "http://tls:3128"}, "http://tls:3128", "HTTPS_PROXY"),
        ({"HTTPS_PROXY": "http://tls:1", "HTTP_PROXY": "http://plain:2"}, "http://plain:2", "HTTP_PROXY"),
        ({"ALL_PROXY": "socks5://s:1080"}, "socks5://s:1080", "ALL_PROXY"),
        ({"http_proxy": "  ", "HTTPS_PROXY": "http://x:1"}, "http://x:1", "HTTPS_PROXY"),
    ],
)
def test_environment(environ: dict[str, str], proxy: str | None, variable: str) -> None:
    env = env_proxy(environ)
    assert (None if env.proxy is None else str(env.proxy), env.variable, env.error) == (proxy, variable, "")


def test_environment_invalid_value_is_an_error_not_a_direct_fetch() -> None:
    env = env_proxy({"HTTP_PROXY": "https://u:pw@gw:443"})
    assert env.proxy is None
    assert env.error == "HTTP_PROXY is not a usable proxy: unsupported proxy scheme 'https' " + (
        "(use http://host:port or socks5://host:port, with an optional user:password@)"
    )


@pytest.mark.parametrize(
    ("host", "no_proxy", "bypassed"),
    [
        ("ocsp.example.com", "", False),
        ("ocsp.example.com", "*", True),
        ("ocsp.example.com", "example.com", True),
        ("ocsp.example.com", ".example.com", True),
        ("ocsp.example.com", "*.example.com", True),
        ("example.com", ".example.com", True),
        ("badexample.com", "example.com", False),
        ("ocsp.example.com", "other.org, EXAMPLE.COM:80", True),
        ("198.51.100.7", "198.51.100.0/24", True),
        ("198.51.100.7", "198.51.100.7", True),
        ("203.0.113.9", "198.51.100.0/24,example.com", False),
        ("[2001:db8::1]", "2001:db8::/32", True),
        ("2001:db8::1", "[2001:db8::1]", True),
    ],
)
def test_no_proxy(host: str, no_proxy: str, bypassed: bool) -> None:
    env = env_proxy({"HTTP_PROXY": "http://gw:3128", "NO_PROXY": no_proxy})
    assert bypass(host, env.no_proxy) is bypassed
    assert (env.for_host(host) is None) is bypassed

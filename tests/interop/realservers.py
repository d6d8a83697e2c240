"""Start the real third-party server of each protocol as a foreground process on loopback.

Every server gets its own directory (a pytest tmp dir), a generated configuration, free high
ports on 127.0.0.1 picked at start-up, and serves the fixture PKI's ``good`` leaf (chain file
leaf + intermediate, and its key). ``RealServer.stop()`` sends SIGTERM to the PID it started,
then SIGKILL to that PID's own process group (the server runs in a new session) as a fallback.

See tests/interop/README.md for the traps each server has.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
LOG_TAIL = 6000

# binary -> Debian package that provides it (scripts/interop-packages.txt lists them all)
PACKAGES = {
    "openssl": "openssl",
    "postfix": "postfix",
    "/usr/lib/postfix/sbin/master": "postfix",
    "dovecot": "dovecot-imapd dovecot-pop3d dovecot-lmtpd",
    "/usr/lib/dovecot/imap-login": "dovecot-imapd",
    "/usr/lib/dovecot/pop3-login": "dovecot-pop3d",
    "/usr/lib/dovecot/lmtp": "dovecot-lmtpd",
    "/usr/lib/dovecot/managesieve-login": "dovecot-managesieved",
    "vsftpd": "vsftpd",
    "slapd": "slapd",
    "/usr/lib/postgresql/15/bin/postgres": "postgresql (15)",
    "/usr/lib/postgresql/15/bin/initdb": "postgresql (15)",
    "setpriv": "util-linux",
    "mariadbd": "mariadb-server",
    "mariadb-install-db": "mariadb-server",
    "prosody": "prosody",
    "kamailio": "kamailio",
    "nginx": "nginx",
    "/usr/lib/news/bin/innd": "inn2",
    "/usr/lib/news/bin/nnrpd": "inn2",
    "/usr/lib/news/bin/makehistory": "inn2",
    "/usr/lib/news/bin/makedbz": "inn2",
    "/usr/lib/news/bin/ctlinnd": "inn2",
    "ngircd": "ngircd",
    "mosquitto": "mosquitto",
    "redis-server": "redis-server",
}


def require(binary: str) -> str:
    """The path of ``binary``; fails the test (never skips) naming the Debian package when absent."""
    found = binary if binary.startswith("/") and os.access(binary, os.X_OK) else shutil.which(binary)
    if not found:
        package = PACKAGES.get(binary, "?")
        pytest.fail(
            f"{binary} not found: install the Debian package {package} "
            f"(see scripts/interop-packages.txt and tests/interop/README.md)",
            pytrace=False,
        )
    return found


def free_port(taken: set[int] = set()) -> int:  # noqa: B006 - shared on purpose: never hand a port out twice
    """A currently free TCP port on 127.0.0.1 (kernel-chosen, so high), never the same twice."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in taken and port >= 1024:
            taken.add(port)
            return port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def allow_traverse(path: Path) -> None:
    """Give 'others' search (x) permission on ``path`` and its ancestors.

    Servers that drop root (postgres, postfix's smtpd, dovecot's helpers) must reach files under
    pytest's 0700 tmp dirs. Only the x bit is added: nobody can list those directories.
    (pytest re-tightens /tmp/pytest-of-USER itself on its next run.)
    """
    for p in [path, *path.parents]:
        with contextlib.suppress(OSError):
            mode = p.stat().st_mode
            if not mode & stat.S_IXOTH:
                p.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


def copy_for(user: str, src: Path, dst: Path, mode: int = 0o600) -> Path:
    """Copy ``src`` to ``dst`` owned by ``user`` with ``mode`` (postgres insists on 0600 keys)."""
    pw = pwd.getpwnam(user)
    shutil.copyfile(src, dst)
    os.chown(dst, pw.pw_uid, pw.pw_gid)
    dst.chmod(mode)
    return dst


def run(cmd: Sequence[str | os.PathLike[str]], log: Path, timeout: float = 120, cwd: Path | None = None) -> None:
    """Run a set-up command to completion, appending its output to ``log``; fail with the log on error."""
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(map(str, cmd))}\n".encode())
        out.flush()
        try:
            rc = subprocess.run(
                [str(c) for c in cmd],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=timeout,
                cwd=cwd,
            ).returncode
        except subprocess.TimeoutExpired:
            rc = -1
    if rc != 0:
        pytest.fail(f"set-up command failed ({rc}): {' '.join(map(str, cmd))}\n{tail(log)}", pytrace=False)


def tail(path: Path, limit: int = LOG_TAIL) -> str:
    try:
        data = path.read_bytes()
    except OSError as e:
        return f"--- {path}: {e}"
    text = data[-limit:].decode(errors="replace")
    return f"--- {path} (last {min(len(data), limit)} bytes):\n{text}"


def greeted(port: int, greetings: tuple[bytes, ...]) -> bool:
    """The server's first line on ``port`` starts with one of ``greetings``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            first = sock.makefile("rb").readline(512)
    except OSError:
        return False
    return first.startswith(greetings)


@dataclass
class RealServer:
    """One running server process: its name, its directory, its ports by role, its logs."""

    name: str
    dir: Path
    cmd: list[str]
    ports: dict[str, int]
    logs: list[Path] = field(default_factory=list)
    env: dict[str, str] | None = None
    stop_cmd: list[str] | None = None  # run before SIGTERM, for servers that only stop when told to
    # Ready only when the first port greets with one of these (a listening port is not enough for
    # servers that answer "not yet" while they start up); empty: the listening port suffices.
    greetings: tuple[bytes, ...] = ()
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.dir / "server.log"

    def all_logs(self) -> str:
        return "\n".join(tail(p) for p in [self.log, *self.logs] if p.exists())

    def start(self) -> RealServer:
        with self.log.open("ab") as out:
            out.write(f"\n$ {' '.join(self.cmd)}\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                self.cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.dir,
                env=self.env,
                start_new_session=True,  # its own process group, for the SIGKILL fallback
            )
        deadline = time.monotonic() + READY_TIMEOUT
        waiting = set(self.ports.values())
        while waiting:
            waiting = {p for p in waiting if not port_open(p)}
            if not waiting and self.greetings and not greeted(next(iter(self.ports.values())), self.greetings):
                waiting = {next(iter(self.ports.values()))}
            if not waiting:
                break
            if self.proc.poll() is not None:
                self.stop()
                pytest.fail(
                    f"{self.name} exited with {self.proc.returncode} before listening on {sorted(waiting)}\n"
                    f"{self.all_logs()}",
                    pytrace=False,
                )
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(
                    f"{self.name} not listening on {sorted(waiting)} after {READY_TIMEOUT:.0f} s\n{self.all_logs()}",
                    pytrace=False,
                )
            time.sleep(0.2)
        return self

    def stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None and self.stop_cmd:
            with self.log.open("ab") as out, contextlib.suppress(OSError, subprocess.TimeoutExpired):
                subprocess.run(self.stop_cmd, stdout=out, stderr=subprocess.STDOUT, env=self.env, timeout=STOP_TIMEOUT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(STOP_TIMEOUT)
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(5)
        # children left in the server's own group (a master that died before reaping them)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


# ---------------------------------------------------------------------------------------------
# One builder per server. Each takes its directory and the served chain/key and returns a
# started RealServer (the caller stops it).
# ---------------------------------------------------------------------------------------------


def start_postfix(d: Path, chain: Path, key: Path) -> RealServer:
    require("postfix")
    master = require("/usr/lib/postfix/sbin/master")
    allow_traverse(d)  # smtpd runs as 'postfix' and reaches the queue and the certificate
    etc, spool, data = d / "etc", d / "spool", d / "data"
    for p in (etc, spool, data):
        p.mkdir()
    pw = pwd.getpwnam("postfix")
    os.chown(data, pw.pw_uid, pw.pw_gid)  # postfix-script insists
    # the key/chain are read by smtpd after it drops to 'postfix'
    chain = copy_for("postfix", chain, d / "served.pem", 0o644)
    key = copy_for("postfix", key, d / "served.key", 0o600)
    ports = {"smtp": free_port(), "smtps": free_port(), "submission": free_port(), "smtp-notls": free_port()}
    (etc / "main.cf").write_text(
        f"""\
compatibility_level = 3.6
queue_directory = {spool}
data_directory = {data}
mail_owner = postfix
setgid_group = postdrop
myhostname = mail.interop.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
maillog_file_prefixes = /var, /dev/stdout, {d}
maillog_file = {d}/maillog
smtpd_tls_chain_files = {key}, {chain}
smtpd_tls_security_level = may
smtpd_relay_restrictions = reject
local_transport = error:interop
default_transport = error:interop
relay_transport = error:interop
virtual_transport = error:interop
alias_maps =
alias_database =
local_recipient_maps =
biff = no
"""
    )
    smtpd = "inet  n       -       n       -       -       smtpd"
    (etc / "master.cf").write_text(
        f"""\
127.0.0.1:{ports["smtp"]} {smtpd}
127.0.0.1:{ports["smtps"]} {smtpd} -o smtpd_tls_wrappermode=yes
127.0.0.1:{ports["submission"]} {smtpd} -o smtpd_tls_security_level=encrypt
127.0.0.1:{ports["smtp-notls"]} {smtpd} -o smtpd_tls_security_level=none
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""
    )
    server = RealServer("postfix", d, [master, "-c", str(etc), "-s"], ports, logs=[d / "maillog"])
    run(["postfix", "-c", etc, "check"], server.log)  # creates the queue tree with the right owners
    return server.start()


def start_dovecot(d: Path, chain: Path, key: Path, *, tls: bool = True) -> RealServer:
    dovecot = require("dovecot")
    for helper in (
        "/usr/lib/dovecot/imap-login",
        "/usr/lib/dovecot/pop3-login",
        "/usr/lib/dovecot/lmtp",
        "/usr/lib/dovecot/managesieve-login",
    ):
        require(helper)
    allow_traverse(d)
    run_dir, state, home = d / "run", d / "state", d / "home"
    for p in (run_dir, state, home):
        p.mkdir()
    names = ["imap", "imaps", "pop3", "pop3s", "lmtp", "sieve"] if tls else ["imap", "pop3", "lmtp", "sieve"]
    ports = {n: free_port() for n in names}

    def listener(name: str, ssl: bool) -> str:
        if name not in ports:
            return ""
        yes_no = "yes" if ssl else "no"
        return (
            f"  inet_listener {name} {{\n    address = 127.0.0.1\n    port = {ports[name]}\n    ssl = {yes_no}\n  }}\n"
        )

    ssl_conf = f"ssl = yes\nssl_cert = <{chain}\nssl_key = <{key}\n" if tls else "ssl = no\n"
    (d / "dovecot.conf").write_text(
        f"""\
base_dir = {run_dir}
state_dir = {state}
instance_name = interop-{d.name}
listen = 127.0.0.1
protocols = imap pop3 lmtp sieve
log_path = {d}/dovecot.log
{ssl_conf}auth_mechanisms = plain
disable_plaintext_auth = no
passdb {{
  driver = static
  args = password=interop
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={home}/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
{listener("imap", False)}{listener("imaps", True)}}}
service pop3-login {{
{listener("pop3", False)}{listener("pop3s", True)}}}
service lmtp {{
{listener("lmtp", False)}}}
service managesieve-login {{
{listener("sieve", False)}}}
"""
    )
    server = RealServer(
        "dovecot" if tls else "dovecot (ssl=no)",
        d,
        [dovecot, "-F", "-c", str(d / "dovecot.conf")],
        ports,
        logs=[d / "dovecot.log"],
    )
    return server.start()


def start_vsftpd(d: Path, chain: Path, key: Path, *, implicit: bool, tls: bool = True) -> RealServer:
    vsftpd = require("vsftpd")
    anon, empty = d / "anon", d / "empty"
    for p in (anon, empty):
        p.mkdir()
        p.chmod(0o555)  # vsftpd refuses a writable anonymous root / secure_chroot_dir
    role = "ftps" if implicit else "ftp"
    ports = {role: free_port()}
    conf = d / "vsftpd.conf"
    conf.write_text(
        f"""\
listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port={ports[role]}
background=NO
ssl_enable={"YES" if tls else "NO"}
implicit_ssl={"YES" if implicit else "NO"}
rsa_cert_file={chain}
rsa_private_key_file={key}
ssl_ciphers=HIGH
allow_anon_ssl=YES
force_local_logins_ssl=NO
force_local_data_ssl=NO
anonymous_enable=YES
local_enable=NO
write_enable=NO
anon_root={anon}
secure_chroot_dir={empty}
seccomp_sandbox=NO
xferlog_enable=NO
vsftpd_log_file={d}/vsftpd.log
dual_log_enable=NO
"""
    )
    conf.chmod(0o600)
    name = f"vsftpd ({role})" if tls else "vsftpd (ssl_enable=NO)"
    return RealServer(name, d, [vsftpd, str(conf)], ports).start()


def start_slapd(d: Path, chain: Path, key: Path, ca: Path, *, tls: bool = True) -> RealServer:
    slapd = require("slapd")
    data = d / "data"
    data.mkdir()
    ports = {"ldap": free_port(), "ldaps": free_port()} if tls else {"ldap": free_port()}
    tls_conf = f"TLSCertificateFile {chain}\nTLSCertificateKeyFile {key}\nTLSCACertificateFile {ca}\n" if tls else ""
    conf = d / "slapd.conf"
    conf.write_text(
        f"""\
include /etc/ldap/schema/core.schema
pidfile {d}/slapd.pid
argsfile {d}/slapd.args
{tls_conf}database ldif
directory {data}
suffix "dc=interop,dc=test"
rootdn "cn=admin,dc=interop,dc=test"
"""
    )
    urls = " ".join(f"{scheme}://127.0.0.1:{port}/" for scheme, port in ports.items())
    return RealServer(
        "slapd" if tls else "slapd (no TLS)", d, [slapd, "-d", "0", "-f", str(conf), "-h", urls], ports
    ).start()


def start_postgres(d: Path, chain: Path, key: Path) -> RealServer:
    postgres = require("/usr/lib/postgresql/15/bin/postgres")
    initdb = require("/usr/lib/postgresql/15/bin/initdb")
    setpriv = require("setpriv")
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail("no 'postgres' user: install the Debian package postgresql (15)", pytrace=False)
    allow_traverse(d)
    as_postgres = [setpriv, "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]
    pw = pwd.getpwnam("postgres")
    sock = d / "sock"
    sock.mkdir()
    os.chown(d, pw.pw_uid, pw.pw_gid)
    os.chown(sock, pw.pw_uid, pw.pw_gid)
    cert = copy_for("postgres", chain, d / "served.pem")
    pkey = copy_for("postgres", key, d / "served.key")
    data = d / "data"
    ports = {"postgres": free_port()}
    server = RealServer(
        "postgres",
        d,
        [
            *as_postgres,
            postgres,
            "-D",
            str(data),
            "-c",
            f"port={ports['postgres']}",
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={sock}",
            "-c",
            "ssl=on",
            "-c",
            f"ssl_cert_file={cert}",
            "-c",
            f"ssl_key_file={pkey}",
            "-c",
            "fsync=off",
            "-c",
            "shared_buffers=16MB",
        ],
        ports,
    )
    # the log is created by root; let postgres (initdb's and the server's stdout) append too
    server.log.touch()
    os.chown(server.log, pw.pw_uid, pw.pw_gid)
    run([*as_postgres, initdb, "-D", data, "-A", "trust", "--no-sync", "-U", "postgres"], server.log)
    return server.start()


def start_mariadb(d: Path, chain: Path, key: Path, ca: Path) -> RealServer:
    mariadbd = require("mariadbd")
    install_db = require("mariadb-install-db")
    data, sock = d / "data", d / "mysqld.sock"
    ports = {"mysql": free_port()}
    # Without a user for 127.0.0.1 MariaDB answers with an error packet before any TLS.
    init = d / "init.sql"
    init.write_text("CREATE USER IF NOT EXISTS 'interop'@'127.0.0.1';\n")
    server = RealServer(
        "mariadb",
        d,
        [
            mariadbd,
            "--no-defaults",
            "--user=root",
            f"--datadir={data}",
            f"--port={ports['mysql']}",
            "--bind-address=127.0.0.1",
            f"--socket={sock}",
            f"--pid-file={d}/mariadbd.pid",
            f"--ssl-cert={chain}",
            f"--ssl-key={key}",
            f"--ssl-ca={ca}",
            "--skip-name-resolve",
            f"--init-file={init}",
            "--skip-log-bin",
            "--innodb-buffer-pool-size=16M",
            f"--log-error={d}/mariadbd.err",
        ],
        ports,
        logs=[d / "mariadbd.err"],
    )
    run(
        [
            install_db,
            "--no-defaults",
            "--user=root",
            f"--datadir={data}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ],
        server.log,
    )
    return server.start()


def start_prosody(d: Path, chain: Path, key: Path) -> RealServer:
    prosody = require("prosody")
    data = d / "data"
    data.mkdir()
    ports = {"xmpp": free_port(), "xmpps": free_port(), "xmpp-server": free_port()}
    conf = d / "prosody.cfg.lua"
    conf.write_text(
        f"""\
run_as_root = true
daemonize = false
pidfile = "{d}/prosody.pid"
data_path = "{data}"
interfaces = {{ "127.0.0.1" }}
local_interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {ports["xmpp"]} }}
c2s_direct_tls_ports = {{ {ports["xmpps"]} }}
s2s_ports = {{ {ports["xmpp-server"]} }}
http_ports = {{ }}
https_ports = {{ }}
component_ports = {{ }}
modules_enabled = {{ "roster"; "saslauth"; "tls"; "dialback"; "disco"; "ping"; "posix" }}
modules_disabled = {{ "s2s_bidi" }}
log = {{ info = "*console"; }}
ssl = {{ certificate = "{chain}"; key = "{key}"; }}
VirtualHost "localhost"
"""
    )
    env = {**os.environ, "HOME": str(d)}
    return RealServer("prosody", d, [prosody, "--config", str(conf), "-F"], ports, env=env).start()


def start_kamailio(d: Path, chain: Path, key: Path) -> RealServer:
    kamailio = require("kamailio")
    modules = sorted(Path("/usr/lib").glob("*/kamailio/modules/tls.so")) + sorted(
        Path("/usr/lib").glob("kamailio/modules/tls.so")
    )
    if not modules:
        pytest.fail("kamailio tls.so not found: install the Debian package kamailio-tls-modules", pytrace=False)
    mpath = modules[0].parent
    run_dir = d / "run"
    run_dir.mkdir()
    ports = {"sips": free_port()}
    tls_cfg = d / "tls.cfg"
    tls_cfg.write_text(
        f"""\
[server:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
certificate = {chain}
private_key = {key}
"""
    )
    cfg = d / "kamailio.cfg"
    cfg.write_text(
        f"""\
#!KAMAILIO
debug=2
log_stderror=yes
children=2
tcp_children=2
auto_aliases=no
enable_tls=yes
listen=tls:127.0.0.1:{ports["sips"]}
mpath="{mpath}/"
loadmodule "tls.so"
loadmodule "sl.so"
modparam("tls", "config", "{tls_cfg}")
request_route {{
    if (method=="OPTIONS") {{
        sl_send_reply("200", "OK");
        exit;
    }}
    sl_send_reply("404", "Not here");
}}
"""
    )
    cmd = [
        kamailio,
        "-f",
        str(cfg),
        "-DD",
        "-E",
        "-m",
        "32",
        "-M",
        "4",
        "-Y",
        str(run_dir),
        "-P",
        str(d / "kamailio.pid"),
        "-w",
        str(d),
    ]
    return RealServer("kamailio", d, cmd, ports).start()


def _inn_tree(d: Path, chain: Path, key: Path, *, tls: bool) -> dict[str, str]:
    """A private INN installation in ``d`` (config, active file, overview, history), owned by news.

    Returns the environment that points INN's programs at it (INNCONF). Nothing in /etc/news
    is read: innd and nnrpd take every path from our inn.conf.
    """
    try:
        news = pwd.getpwnam("news")
    except KeyError:
        pytest.fail("no 'news' user: install the Debian package inn2", pytrace=False)
    makehistory = require("/usr/lib/news/bin/makehistory")
    allow_traverse(d)  # innd and nnrpd run as news
    etc, db, run_dir, log, spool, filt = d / "etc", d / "db", d / "run", d / "log", d / "spool", d / "filter"
    spools = ("articles", "overview", "incoming", "incoming/tmp", "outgoing", "archive")
    for p in (etc, db, run_dir, log, spool, filt, *(spool / s for s in spools)):
        p.mkdir(parents=True, exist_ok=True)
    # nnrpd refuses a key that anyone but news can read
    tls_conf = (
        f"tlscapath: {etc}\n"
        f"tlscertfile: {copy_for('news', chain, etc / 'cert.pem', 0o644)}\n"
        f"tlskeyfile: {copy_for('news', key, etc / 'key.pem', 0o600)}\n"
        if tls
        else f"tlscertfile: {etc}/absent.pem\ntlskeyfile: {etc}/absent.key\n"
    )
    # domain: innd and nnrpd need a fully qualified name, and test machines rarely have one
    (etc / "inn.conf").write_text(
        f"""\
domain: interop.test
pathhost: news.interop.test
organization: "tls-exporter interop"
mta: "/bin/false %s"
ovmethod: tradindexed
hismethod: hisv6
nnrpdloadlimit: 0
pathnews: /usr/lib/news
pathbin: /usr/lib/news/bin
pathcontrol: /usr/lib/news/bin/control
pathfilter: {filt}
pathetc: {etc}
pathdb: {db}
pathrun: {run_dir}
pathlog: {log}
pathhttp: {log}
pathspool: {spool}
patharticles: {spool}/articles
pathoverview: {spool}/overview
pathincoming: {spool}/incoming
pathtmp: {spool}/incoming/tmp
pathoutgoing: {spool}/outgoing
patharchive: {spool}/archive
{tls_conf}"""
    )
    shutil.copyfile("/usr/lib/news/examples/active", db / "active")  # innd needs control and junk
    for name in ("newsgroups", "active.times"):
        (db / name).touch()
    (etc / "storage.conf").write_text("method tradspool {\n  newsgroups: *\n  class: 0\n}\n")
    (etc / "newsfeeds").write_text("ME:!*/!local::\n")
    (etc / "incoming.conf").write_text("streaming: true\n")  # no peers: 127.0.0.1 is a reader
    (etc / "readers.conf").write_text(
        'auth "loopback" {\n  hosts: "127.0.0.1"\n  default: "<interop>"\n}\n'
        'access "loopback" {\n  users: "<interop>"\n  newsgroups: "*"\n  access: R\n}\n'
    )
    for p in [d, *d.rglob("*")]:
        os.chown(p, news.pw_uid, news.pw_gid)
    env = {**os.environ, "INNCONF": str(etc / "inn.conf")}
    setpriv = require("setpriv")
    as_news = [setpriv, "--reuid=news", "--regid=news", "--init-groups", "--", "env", f"INNCONF={etc}/inn.conf"]
    # the empty history and the overview index (group.index) innd and nnrpd open at start-up
    run([*as_news, makehistory], d / "setup.log", cwd=db)
    run([*as_news, require("/usr/lib/news/bin/makedbz"), "-i", "-o"], d / "setup.log", cwd=db)
    run([*as_news, makehistory, "-O", "-x"], d / "setup.log", cwd=db)
    return env


def start_innd(d: Path, chain: Path, key: Path, *, tls: bool = True) -> RealServer:
    """innd in the foreground: a reader on its port gets nnrpd, which answers STARTTLS (RFC 4642)."""
    innd = require("/usr/lib/news/bin/innd")
    require("/usr/lib/news/bin/nnrpd")
    ctlinnd = require("/usr/lib/news/bin/ctlinnd")
    env = _inn_tree(d, chain, key, tls=tls)
    ports = {"nntp": free_port()}
    # innd starts as root, binds, then runs as news; -N: no Perl/Python filters from /etc/news.
    # It ignores SIGTERM while idle (the flag is only read after its next timeout), so it is
    # stopped the documented way, ctlinnd shutdown, with SIGTERM/SIGKILL as the fallback.
    return RealServer(
        "innd" if tls else "innd (no TLS certificate)",
        d,
        [innd, "-f", "-N", "-4", "127.0.0.1", "-P", str(ports["nntp"])],
        ports,
        logs=[d / "setup.log", d / "log" / "errlog", d / "log" / "news.notice"],
        env=env,
        stop_cmd=[ctlinnd, "-t", "5", "shutdown", "interop tests done"],
        # innd listens before it serves readers; until then a reader may get a 400 (seen on a
        # loaded machine: the first STARTTLS then failed).
        greetings=(b"200", b"201"),
    ).start()


def start_nnrpd_tls(d: Path, chain: Path, key: Path) -> RealServer:
    """nnrpd as its own daemon with -S (TLS at once): INN's documented way to serve nntps."""
    nnrpd = require("/usr/lib/news/bin/nnrpd")
    env = _inn_tree(d, chain, key, tls=True)
    ports = {"nntps": free_port()}
    return RealServer(
        "nnrpd -S",
        d,
        [nnrpd, "-D", "-f", "-S", "-n", "-b", "127.0.0.1", "-p", str(ports["nntps"])],
        ports,
        logs=[d / "setup.log"],
        env=env,
    ).start()


def start_ngircd(d: Path, chain: Path, key: Path) -> RealServer:
    ngircd = require("ngircd")
    try:
        irc = pwd.getpwnam("irc")
    except KeyError:
        pytest.fail("no 'irc' user (install the Debian package ngircd)", pytrace=False)
    allow_traverse(d)
    run_dir = d / "run"
    run_dir.mkdir()
    os.chown(run_dir, irc.pw_uid, irc.pw_gid)  # the PID file is written after dropping to irc
    ports = {"ircs": free_port()}
    conf = d / "ngircd.conf"
    # An empty [Global] Ports means no plaintext listener (otherwise it opens 6667).
    conf.write_text(
        f"""\
[Global]
Name = irc.interop.test
Info = tls-exporter interop
AdminInfo1 = tls-exporter
AdminInfo2 = interop tests
AdminEMail = root@localhost
Listen = 127.0.0.1
Ports =
PidFile = {run_dir}/ngircd.pid
ServerUID = irc
ServerGID = irc
MotdPhrase = interop
[Options]
PAM = no
Ident = no
DNS = no
IncludeDir = {d}/conf.d
[SSL]
CertFile = {chain}
KeyFile = {key}
Ports = {ports["ircs"]}
"""
    )
    (d / "conf.d").mkdir()
    # -n: foreground; it reads the certificate and key as root, then runs as irc
    return RealServer("ngircd", d, [ngircd, "-n", "-f", str(conf)], ports).start()


def start_mosquitto(d: Path, chain: Path, key: Path) -> RealServer:
    mosquitto = require("mosquitto")
    try:
        pwd.getpwnam("mosquitto")
    except KeyError:
        pytest.fail("no 'mosquitto' user: install the Debian package mosquitto", pytrace=False)
    allow_traverse(d)
    # started as root it drops to user mosquitto before it reads the certificate and key
    chain = copy_for("mosquitto", chain, d / "served.pem", 0o644)
    key = copy_for("mosquitto", key, d / "served.key", 0o600)
    ports = {"mqtts": free_port()}
    conf = d / "mosquitto.conf"
    conf.write_text(
        f"""\
per_listener_settings false
allow_anonymous true
persistence false
log_dest stdout
listener {ports["mqtts"]} 127.0.0.1
certfile {chain}
keyfile {key}
"""
    )
    return RealServer("mosquitto", d, [mosquitto, "-c", str(conf)], ports).start()


def start_redis(d: Path, chain: Path, key: Path) -> RealServer:
    redis = require("redis-server")
    ports = {"redis": free_port(), "redis-plain": free_port()}
    conf = d / "redis.conf"
    # the plaintext port too: probing it as redis must not look like TLS
    conf.write_text(
        f"""\
bind 127.0.0.1
port {ports["redis-plain"]}
tls-port {ports["redis"]}
tls-cert-file {chain}
tls-key-file {key}
tls-auth-clients no
daemonize no
save ""
appendonly no
dir {d}
logfile ""
"""
    )
    return RealServer("redis-server", d, [redis, str(conf)], ports).start()


def start_nginx(d: Path, chain: Path, key: Path, client_ca: Path, *, protocols: str) -> RealServer:
    """nginx serving ``chain`` and requiring a client certificate issued under ``client_ca``
    (`ssl_verify_client on`), speaking only ``protocols`` (e.g. "TLSv1.2")."""
    nginx = require("nginx")
    ports = {"https": free_port()}
    for sub in ("logs", "tmp"):
        (d / sub).mkdir(exist_ok=True)
    conf = d / "nginx.conf"
    conf.write_text(
        f"""\
daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/logs/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {d}/logs/access.log;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    server {{
        listen 127.0.0.1:{ports["https"]} ssl;
        server_name localhost;
        ssl_certificate {chain};
        ssl_certificate_key {key};
        ssl_protocols {protocols};
        ssl_client_certificate {client_ca};
        ssl_verify_client on;
        location / {{ return 200 "hello, $ssl_client_s_dn\\n"; }}
    }}
}}
"""
    )
    return RealServer(
        "nginx", d, [nginx, "-p", str(d), "-c", str(conf)], ports, logs=[d / "logs" / "error.log"]
    ).start()

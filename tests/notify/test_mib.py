"""mibs/TLS-EXPORTER-MIB.txt loads in net-snmp and names every OID the exporter sends."""

from __future__ import annotations

import subprocess

from exporter.notify import mib

from .trapd import MIB_DIRS, REPO, require

MIB = REPO / "mibs" / "TLS-EXPORTER-MIB.txt"


def _translate(*args: str, modules: str = "TLS-EXPORTER-MIB") -> subprocess.CompletedProcess[str]:
    # Only this module and what it imports: Debian ships none of the IETF MIBs that net-snmp's
    # default module list names, so `-m +...` also prints errors about those (not about ours).
    binary = require("snmptranslate", "snmp")
    return subprocess.run(
        [binary, "-m", modules, "-M", MIB_DIRS, *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def _errors(stderr: str) -> str:
    # net-snmp announces the persistent directory it creates on its first run on a machine
    # ("Created directory: /var/lib/snmp/cert_indexes"): not about the MIB.
    return "".join(line for line in stderr.splitlines(keepends=True) if not line.startswith("Created directory:"))


def _dotted(oid: tuple[int, ...]) -> str:
    return "." + ".".join(map(str, oid))


def test_mib_loads_without_error_and_names_every_varbind() -> None:
    oids = [_dotted(mib.TRAP_FIRING), _dotted(mib.TRAP_RESOLVED), *(_dotted(o) for o in mib.VARBINDS.values())]
    run = _translate(*oids)
    assert run.returncode == 0, run.stderr
    assert _errors(run.stderr) == "", run.stderr
    names = [line for line in run.stdout.splitlines() if line.strip()]
    assert names == [
        "TLS-EXPORTER-MIB::tlsAlertFiring",
        "TLS-EXPORTER-MIB::tlsAlertResolved",
        *(f"TLS-EXPORTER-MIB::{name}.0" for name in mib.VARBINDS),
    ]


def test_loads_on_top_of_the_default_modules() -> None:
    run = _translate("-On", "TLS-EXPORTER-MIB::tlsAlertFiring", modules="+TLS-EXPORTER-MIB")
    assert run.returncode == 0
    assert run.stdout.strip() == _dotted(mib.TRAP_FIRING)
    ours = [line for line in run.stderr.splitlines() if "TLS-EXPORTER-MIB" in line or "tlsAlert" in line]
    assert ours == []


def test_names_translate_back_to_the_exporters_oids() -> None:
    for name, oid in mib.VARBINDS.items():
        run = _translate("-On", f"TLS-EXPORTER-MIB::{name}.0")
        assert run.returncode == 0 and run.stderr == "", run.stderr
        assert run.stdout.strip() == _dotted(oid)


def test_notifications_carry_every_object_in_order() -> None:
    for trap in ("tlsAlertFiring", "tlsAlertResolved"):
        run = _translate("-Td", f"TLS-EXPORTER-MIB::{trap}")
        assert run.returncode == 0 and run.stderr == "", run.stderr
        objects = run.stdout.split("OBJECTS", 1)[1].split("}", 1)[0].strip(" {\n\t")
        assert [o.strip() for o in objects.split(",")] == list(mib.VARBINDS)


def test_status_and_severity_enumerations_match() -> None:
    status = _translate("-Td", "TLS-EXPORTER-MIB::tlsAlertStatus").stdout
    assert "INTEGER {firing(1), resolved(2)}" in status
    severity = _translate("-Td", "TLS-EXPORTER-MIB::tlsAlertSeverity").stdout
    assert "INTEGER {critical(1), warning(2), info(3), other(4)}" in severity
    assert [s.value for s in mib.StatusValue] == [1, 2]
    assert [s.value for s in mib.SeverityValue] == [1, 2, 3, 4]


def test_mib_says_the_enterprise_number_is_a_placeholder() -> None:
    text = MIB.read_text()
    assert "{ enterprises 32473 9632 }" in text
    assert "PLACEHOLDER" in text and "RFC 5612" in text
    assert mib.ENTERPRISE_NUMBER == 32473

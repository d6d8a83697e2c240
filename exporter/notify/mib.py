"""The OIDs of mibs/TLS-EXPORTER-MIB.txt (a test translates each with net-snmp against the MIB).

32473 is the IANA Private Enterprise Number reserved for documentation (RFC 5612): a placeholder
to replace with a registered number, here and in the MIB's MODULE-IDENTITY, before production use.
"""

from __future__ import annotations

from enum import IntEnum

ENTERPRISE_NUMBER = 32473
ENTERPRISE_OID = (1, 3, 6, 1, 4, 1, ENTERPRISE_NUMBER)
MODULE_OID = (*ENTERPRISE_OID, 9632)  # tlsExporterMIB
NOTIFICATIONS_OID = (*MODULE_OID, 0)
OBJECTS_OID = (*MODULE_OID, 1)

TRAP_FIRING = (*NOTIFICATIONS_OID, 1)  # tlsAlertFiring
TRAP_RESOLVED = (*NOTIFICATIONS_OID, 2)  # tlsAlertResolved

# Object name -> OID of its scalar instance (.0), in the order of the notifications' OBJECTS.
VARBINDS: dict[str, tuple[int, ...]] = {
    name: (*OBJECTS_OID, index, 0)
    for index, name in enumerate(
        (
            "tlsAlertName",
            "tlsAlertStatus",
            "tlsAlertSeverity",
            "tlsAlertOwner",
            "tlsAlertServerOwner",
            "tlsAlertTarget",
            "tlsAlertAddress",
            "tlsAlertProtocol",
            "tlsAlertDaysLeft",
            "tlsAlertSummary",
            "tlsAlertRemedy",
        ),
        start=1,
    )
}

DISPLAY_STRING_MAX = 255  # SNMPv2-TC DisplayString: SIZE (0..255)


class StatusValue(IntEnum):
    FIRING = 1
    RESOLVED = 2


class SeverityValue(IntEnum):
    CRITICAL = 1
    WARNING = 2
    INFO = 3
    OTHER = 4

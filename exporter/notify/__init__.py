"""Notifications that leave the exporter: SNMP traps for alerts relayed by Alertmanager."""

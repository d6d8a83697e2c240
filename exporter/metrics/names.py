"""Every metric name and HELP text the exporter exposes, in one place.

Rules, dashboards and tests read this module to make sure they name only real metrics.
Names are given without the ``_total`` suffix of counters; ``EXPOSED`` lists the sample names.
"""

from __future__ import annotations

NAMESPACE = "tls"

PROBE_SUCCESS = "tls_probe_success"
HANDSHAKE_OUTCOME = "tls_handshake_outcome"
FILE_OUTCOME = "tls_file_outcome"
PROBE_DURATION = "tls_probe_duration_seconds"
PROBE_TIMESTAMP = "tls_probe_timestamp_seconds"
CERT_NOT_AFTER = "tls_cert_not_after_timestamp_seconds"
CERT_NOT_BEFORE = "tls_cert_not_before_timestamp_seconds"
CERT_DAYS_LEFT = "tls_cert_days_until_expiry"
CERT_TIER = "tls_cert_expiry_tier"
CERT_INFO = "tls_cert_info"
CERT_HOSTNAME_MATCH = "tls_cert_hostname_match"
CERT_EXPECTED_MATCH = "tls_cert_expected_match"
CERT_KEY_BITS = "tls_cert_key_bits"
CERT_KEY_WEAK = "tls_cert_key_weak"
CERT_SIGNATURE_INFO = "tls_cert_signature_info"
CERT_SIGNATURE_WEAK = "tls_cert_signature_weak"
CHAIN_VALID = "tls_chain_valid"
CHAIN_ISSUE = "tls_chain_issue"
CHAIN_PATH_INFO = "tls_chain_path_info"
CHAIN_CERT_NOT_AFTER = "tls_chain_cert_not_after_timestamp_seconds"
CHAIN_DAYS_LEFT = "tls_chain_days_until_expiry"
CONNECTION_INFO = "tls_connection_info"
PROTOCOL_ACCEPTED = "tls_protocol_accepted"
OCSP_STATUS = "tls_ocsp_status"
OCSP_STAPLED = "tls_ocsp_stapled"
SECURITY_GRADE = "tls_security_grade"
SECURITY_SCORE = "tls_security_score"
CERT_LAST_CHANGE = "tls_cert_last_change_timestamp_seconds"
TARGET_DISTINCT_CERTS = "tls_target_distinct_certificates"
ASSESSMENT_ERROR = "tls_assessment_error"
PROTOCOL_BELOW_MINIMUM = "tls_protocol_below_minimum"
CERT_VALIDITY_TOO_LONG = "tls_cert_validity_too_long"
PROTOCOL_SCAN_TIMESTAMP = "tls_protocol_scan_timestamp_seconds"
DANE_TLSA_RECORDS = "tls_dane_tlsa_records"
DANE_MATCH = "tls_dane_match"
DANE_DNSSEC_VALIDATED = "tls_dane_dnssec_validated"
CAA_INFO = "tls_caa_info"
CAA_PERMITS_ISSUER = "tls_caa_permits_issuer"
BUILD_INFO = "tls_exporter_build_info"
CONFIG_RELOAD_OK = "tls_exporter_config_last_reload_successful"
CONFIG_RELOAD_TIMESTAMP = "tls_exporter_config_last_reload_success_timestamp_seconds"
TARGETS = "tls_exporter_targets"
PROBES = "tls_exporter_probes"  # counter: exposed as tls_exporter_probes_total
EXPORTER_PROBE_DURATION = "tls_exporter_probe_duration_seconds"  # histogram
EXPORTER_ERRORS = "tls_exporter_errors"  # counter: exposed as tls_exporter_errors_total
SHARD = "tls_exporter_shard"
NOTIFICATIONS = "tls_exporter_notifications"  # counter: exposed as tls_exporter_notifications_total
DISCOVERY_ENDPOINTS = "tls_discovery_endpoints"
DISCOVERY_LAST_RUN = "tls_discovery_last_run_timestamp_seconds"
DISCOVERY_RUN_DURATION = "tls_discovery_run_duration_seconds"
DISCOVERY_SCOPE = "tls_discovery_scope"
DISCOVERY_RUN_SUCCESS = "tls_discovery_last_run_success"
DISCOVERY_INTERVAL = "tls_discovery_interval_seconds"

HELP: dict[str, str] = {
    PROBE_SUCCESS: "1 when a certificate was obtained and analysed.",
    HANDSHAKE_OUTCOME: "Outcome of the last probe of this address; exactly one state is 1.",
    FILE_OUTCOME: "Outcome of the last read of this certificate file; exactly one state is 1.",
    PROBE_DURATION: "Duration of the last probe in seconds.",
    PROBE_TIMESTAMP: "Unix time the last probe ran.",
    CERT_NOT_AFTER: "NotAfter of the certificate as a Unix timestamp.",
    CERT_NOT_BEFORE: "NotBefore of the certificate as a Unix timestamp.",
    CERT_DAYS_LEFT: "Days until the certificate expires, fractional, negative once expired; computed at scrape time.",
    CERT_TIER: "Expiry tier of the certificate under the target's profile; exactly one state is 1.",
    CERT_INFO: "Identity of the certificate now served.",
    CERT_HOSTNAME_MATCH: "1 when the leaf certificate covers server_name.",
    CERT_EXPECTED_MATCH: "1 when the served certificate matches the configured expectation.",
    CERT_KEY_BITS: "Size of the certificate's public key in bits.",
    CERT_KEY_WEAK: "1 when the certificate's key is below the profile's minimum.",
    CERT_SIGNATURE_INFO: "Signature algorithm and hash of the certificate.",
    CERT_SIGNATURE_WEAK: "1 when a weak hash signs the leaf or an intermediate.",
    CHAIN_VALID: "1 when the served chain verifies to the profile's trust for server_name now.",
    CHAIN_ISSUE: "1 for each chain issue that holds.",
    CHAIN_PATH_INFO: "1 for the path built to a trust anchor: its root, its length, whether it is cross-signed.",
    CHAIN_CERT_NOT_AFTER: "NotAfter of every certificate served, by position in the chain.",
    CHAIN_DAYS_LEFT: "Days left of the earliest-expiring certificate served.",
    CONNECTION_INFO: "Protocol version and cipher the handshake negotiated.",
    PROTOCOL_ACCEPTED: "1 when the server accepts this protocol version.",
    OCSP_STATUS: "OCSP status of the leaf certificate.",
    OCSP_STAPLED: "1 when the server stapled a valid OCSP response.",
    SECURITY_GRADE: "Security grade of the endpoint (SSL Labs style).",
    SECURITY_SCORE: "Security score 0-100: the grade the server would get if trusted.",
    CERT_LAST_CHANGE: "Unix time the served certificate last changed (renewal or replacement).",
    TARGET_DISTINCT_CERTS: "Number of different leaf certificates served across the target's addresses.",
    PROTOCOL_BELOW_MINIMUM: "1 when the server accepts a protocol version below the profile's min_tls_version.",
    CERT_VALIDITY_TOO_LONG: "1 when the certificate is valid for longer than the profile's max_validity.",
    ASSESSMENT_ERROR: "1 when a judgement step could not be completed on the exporter's side (not a finding).",
    PROTOCOL_SCAN_TIMESTAMP: "Unix time the last protocol-version scan of this address completed.",
    DANE_TLSA_RECORDS: "Number of TLSA records at _port._tcp.name (profile dane: true); 0 when there are none.",
    DANE_MATCH: "1 when the served chain matches one of the TLSA records; absent when there are none.",
    DANE_DNSSEC_VALIDATED: "1 when the resolver validated the TLSA answer with DNSSEC (its AD bit).",
    CAA_INFO: "The closest CAA record set of the name (profile caa: true): issue, issuewild and iodef values.",
    CAA_PERMITS_ISSUER: "1 when the closest CAA set authorises the leaf's issuer (or there is none).",
    BUILD_INFO: "Build information of tls-exporter.",
    CONFIG_RELOAD_OK: "1 when the last configuration reload succeeded.",
    CONFIG_RELOAD_TIMESTAMP: "Unix time of the last successful configuration load.",
    TARGETS: "Number of configured targets (network targets and files).",
    PROBES: "Probes run, by outcome.",
    EXPORTER_PROBE_DURATION: "Duration of probes in seconds.",
    EXPORTER_ERRORS: "Judgement steps that failed on the exporter's side, by step.",
    SHARD: "1 for the share of the targets this instance probes (--shard=index/count; 0/1 when not sharded).",
    NOTIFICATIONS: "Notifications the exporter sent (SNMP traps, reports), by channel and result.",
    DISCOVERY_ENDPOINTS: "Address:port pairs of the scan's last run, by handshake outcome.",
    DISCOVERY_LAST_RUN: "Unix time the scan's last run ended.",
    DISCOVERY_RUN_DURATION: "Duration of the scan's last run in seconds.",
    DISCOVERY_SCOPE: "Address:port pairs in the scan's scope (this instance's share, with --shard).",
    DISCOVERY_RUN_SUCCESS: "1 when the scan's last run completed, 0 when it stopped on an error on our side.",
    DISCOVERY_INTERVAL: "The scan's configured interval in seconds.",
}

# Every sample name that can appear in an exposition (counters with _total, histograms with
# their series). Rules and dashboards may name only these.
EXPOSED: frozenset[str] = frozenset(
    [name for name in HELP if name not in (PROBES, EXPORTER_PROBE_DURATION, EXPORTER_ERRORS, NOTIFICATIONS)]
    + [f"{PROBES}_total", f"{EXPORTER_ERRORS}_total", f"{NOTIFICATIONS}_total"]
    + [f"{EXPORTER_PROBE_DURATION}_{s}" for s in ("bucket", "sum", "count")]
)

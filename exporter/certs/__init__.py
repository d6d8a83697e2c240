"""Pure judgement of certificates: facts, chains, findings, grades."""

import warnings

from cryptography.utils import CryptographyDeprecationWarning

# A zero or negative serial number (RFC 5280 forbids it; some servers still send one) is a finding
# of ours (``pathrules``), not a warning on the exporter's stderr at every parse.
NON_POSITIVE_SERIAL = "Parsed a serial number which wasn't positive"
warnings.filterwarnings("ignore", message=NON_POSITIVE_SERIAL, category=CryptographyDeprecationWarning)

"""The judge's steps that need the network or a clock of their own: the assessment (chain,
revocation, grade, each with its own status), the version scan, and the fetches they make.
The pure rules they apply are in ``exporter.certs``."""

"""The bundle source: fetch each `bundles:` URL over HTTPS and observe the certificates in it.

One observation per URL, with the outcomes of stored certificates (``tls_file_outcome``):
``certificate_found``; ``missing`` when the server answers 404 or 410; ``unreadable`` when it
cannot be fetched (refused, timed out, TLS failure, another HTTP status), the reason in the
detail; ``parse_error`` when what came back holds no certificate or is over the size limit. The
profile's ``trust:`` verifies the publishing server (the system store by default). Everything
runs under the probe's one ``Deadline``; the body is read up to ``MAX_FILE_BYTES`` and no further.
"""

from __future__ import annotations

import dataclasses
import ssl
import time
from typing import TYPE_CHECKING

from exporter.config.bundles import BundleURL
from exporter.config.model import Config, Job, Profile
from exporter.results import Observation
from exporter.sources.file import MAX_FILE_BYTES, stored_certificates
from exporter.support.deadline import Deadline
from exporter.support.errors import FileOutcome

if TYPE_CHECKING:
    import aiohttp


class _Unreadable(Exception):
    def __init__(self, outcome: FileOutcome, detail: str) -> None:
        super().__init__(detail)
        self.outcome, self.detail = outcome, detail


def _tls(profile: Profile | None) -> ssl.SSLContext:
    trust = None if profile is None or profile.trust == "system" else profile.trust
    return ssl.create_default_context(cafile=trust)


async def _body(response: aiohttp.ClientResponse) -> bytes:
    if response.status in (404, 410):
        raise _Unreadable(FileOutcome.MISSING, f"HTTP {response.status}")
    if response.status != 200:
        raise _Unreadable(FileOutcome.UNREADABLE, f"HTTP {response.status}")
    data = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        data += chunk
        if len(data) > MAX_FILE_BYTES:
            raise _Unreadable(FileOutcome.PARSE_ERROR, f"over {MAX_FILE_BYTES} bytes")
    return bytes(data)


class BundleSource:
    """Certificate bundles at HTTPS URLs (``bundles:``): one observation per URL."""

    name = "bundle"
    every_certificate = True  # each certificate of the bundle is reported, with its position

    def jobs(self, config: Config) -> tuple[Job, ...]:
        return config.sections.get("bundles", ())

    def labels(self, job: Job, location: str, owner: str) -> dict[str, str]:
        labels = {"target": job.target, "protocol": job.protocol, "name": job.name, "owner": owner}
        if owner != job.owner:  # a certificate rule chose the owner: the bundle's team is told too
            labels["server_owner"] = job.owner
        labels.update(job.labels)
        return labels

    def opener(self, job: Job, location: str, timeout: float, profile: Profile | None = None) -> None:
        return None  # certificates at rest: no versions to scan

    async def observe(self, job: Job, deadline: Deadline, profile: Profile | None = None) -> list[Observation]:
        assert isinstance(job, BundleURL)
        import aiohttp  # imported on the first bundle fetch, as for AIA and OCSP

        started = time.time()
        try:
            async with aiohttp.ClientSession(trust_env=False) as session:
                response = await deadline.run(session.get(job.url, ssl=_tls(profile), allow_redirects=False))
                async with response:
                    data = await deadline.run(_body(response))
        except _Unreadable as exc:
            return [self._failed(job, exc.outcome, exc.detail, started)]
        except TimeoutError:
            return [self._failed(job, FileOutcome.UNREADABLE, f"not fetched within {job.timeout:g}s", started)]
        except aiohttp.ClientConnectorCertificateError as exc:
            why = getattr(exc.certificate_error, "verify_message", None) or str(exc.certificate_error)
            return [self._failed(job, FileOutcome.UNREADABLE, f"TLS: the publisher's certificate: {why}", started)]
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return [self._failed(job, FileOutcome.UNREADABLE, f"{type(exc).__name__}: {exc}", started)]
        observation = stored_certificates(data, job.url, job.max_certificates, started)
        return [_timed(observation, started)]

    @staticmethod
    def _failed(job: BundleURL, outcome: FileOutcome, detail: str, started: float) -> Observation:
        return _timed(Observation(location=job.url, outcome=outcome, detail=detail, started_at=started), started)


def _timed(observation: Observation, started: float) -> Observation:
    return dataclasses.replace(observation, duration=time.time() - started)

"""The archive: each full run's records, kept in S3 as gzip JSON Lines, for statements and Athena.

With ``ARCHIVE_BUCKET`` set, a full run writes one object per target it read:
``records/dt=<YYYY-MM-DD>/<runAt>-<target id>.jsonl.gz``, where ``dt`` is the run's UTC date,
``runAt`` the records' own ``runAt`` without its punctuation (``20261207T221500Z``), and the target
id eight hex digits of a hash of the target's account and region. The object holds exactly the lines
the run logged for that target (:mod:`quota_monitor.publish.records`): its key records, its plan
records and, with several targets, its target record, byte for byte, each ending in ``\\n``. The
name is the same for the same run and target, so a write sent twice replaces itself instead of
doubling the readings; two targets, or two runs a second apart, never share a name.

A write that fails (after botocore's retries and :data:`DEFAULT_ATTEMPTS` of this module's own,
with short backoff) is counted and described in :class:`ArchiveWritten`, never raised: by the time
the archive is written the run has published its metrics and delivered its alerts, and a missing
object costs one reading of each key, which the statement says (docs/archive.md).

No encryption is asked for: the bucket's default encryption (SSE-S3 in the stack's bucket) applies
to every object S3 stores, and asking for SSE-KMS would need key permissions the writer does not
otherwise need.
"""

from __future__ import annotations

import hashlib
import time
import zlib
from dataclasses import dataclass
from datetime import UTC
from typing import TYPE_CHECKING, Final

from botocore.exceptions import BotoCoreError, ClientError

from quota_monitor.errors import CallNotStarted, describe, error_code, is_configuration_error

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from datetime import date, datetime

    from mypy_boto3_s3 import S3Client

    from quota_monitor.models import Target

#: Where the records go in the bucket; the Glue table's location (``infra/archive.py``).
ARCHIVE_PREFIX: Final = "records/"
OBJECT_SUFFIX: Final = ".jsonl.gz"
#: The object is a gzip file, and says so. Not ``application/x-ndjson`` with ``Content-Encoding:
#: gzip``: with that header, browsers, ``curl --compressed`` and other HTTP clients decompress on
#: download and save plain JSON under a ``.gz`` name, which then fails to gunzip. Athena's JSON
#: SerDe reads the object as gzip from its ``.gz`` extension, whatever its headers.
CONTENT_TYPE: Final = "application/gzip"
#: Tries of one PutObject, each with botocore's own retries inside.
DEFAULT_ATTEMPTS: Final = 3
#: The wait before the second try; doubled before each further one.
RETRY_BASE_SECONDS: Final = 0.25
#: zlib's default: about 10 times smaller than the JSON at a few tens of ms per MB (docs/archive.md).
COMPRESS_LEVEL: Final = 6
#: Lines compressed at a time.
LINES_PER_CHUNK: Final = 500
#: S3's answers that a later try can get past; any other 4xx (no such bucket, access denied) cannot.
RETRYABLE_CODES: Final = frozenset(
    {
        "SlowDown",
        "RequestTimeout",
        "InternalError",
        "ServiceUnavailable",
        "Throttling",
        "RequestLimitExceeded",
    }
)


def partition_prefix(day: date, prefix: str = ARCHIVE_PREFIX) -> str:
    """``records/dt=2026-12-07/``: the objects of the runs of one UTC day."""
    return f"{prefix}dt={day.isoformat()}/"


def target_id(target: Target | None) -> str:
    """Eight hex digits that tell targets apart in an object's name (``local`` hashed for none)."""
    where = "local" if target is None else f"{target.account_id or 'unknown'}|{target.region}"
    return hashlib.sha256(where.encode()).hexdigest()[:8]


def object_key(run_at: datetime, target: Target | None, *, prefix: str = ARCHIVE_PREFIX) -> str:
    """``records/dt=2026-12-07/20261207T221500Z-1a2b3c4d.jsonl.gz`` for a run and target."""
    at = run_at.astimezone(UTC)
    name = f"{at.strftime('%Y%m%dT%H%M%SZ')}-{target_id(target)}{OBJECT_SUFFIX}"
    return partition_prefix(at.date(), prefix) + name


def gzip_lines(lines: Iterable[str], *, level: int = COMPRESS_LEVEL) -> tuple[bytes, int, int]:
    """(gzip bytes, lines, uncompressed bytes) of the lines, each ending in a newline, as
    :func:`quota_monitor.publish.records.write_records` writes them. The gzip header carries no
    time, so the same lines always give the same bytes."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)  # 31: a gzip header and trailer
    parts: list[bytes] = []
    chunk: list[str] = []
    records = size = 0

    def flush() -> None:
        nonlocal size
        data = ("\n".join(chunk) + "\n").encode("utf-8")
        size += len(data)
        parts.append(compressor.compress(data))
        chunk.clear()

    for line in lines:
        chunk.append(line)
        records += 1
        if len(chunk) >= LINES_PER_CHUNK:
            flush()
    if chunk:
        flush()
    parts.append(compressor.flush())
    return b"".join(parts), records, size


@dataclass(frozen=True)
class ArchiveWritten:
    """What a run's archive writes did: objects stored, their records, their bytes as stored
    (gzip) and as logged, and each object that could not be stored, described."""

    objects: int = 0
    records: int = 0
    bytes: int = 0
    raw_bytes: int = 0
    failures: tuple[str, ...] = ()

    def __add__(self, other: ArchiveWritten) -> ArchiveWritten:
        return ArchiveWritten(
            self.objects + other.objects,
            self.records + other.records,
            self.bytes + other.bytes,
            self.raw_bytes + other.raw_bytes,
            self.failures + other.failures,
        )

    @classmethod
    def total(cls, parts: Iterable[ArchiveWritten]) -> ArchiveWritten:
        """Every target's writes of a run, as one."""
        result = cls()
        for part in parts:
            result += part
        return result

    def summary(self) -> dict[str, int]:
        """The run summary's fields: ``archiveObjects``, ``archiveRecords``, ``archiveBytes``
        (gzip) and ``archiveFailures``."""
        return {
            "archiveObjects": self.objects,
            "archiveRecords": self.records,
            "archiveBytes": self.bytes,
            "archiveFailures": len(self.failures),
        }


def worth_retrying(error: ClientError | BotoCoreError) -> bool:
    """A throttle, a 5xx or a broken connection may pass on another try; a refusal, a missing bucket
    or a call the run has no time left for will not."""
    if isinstance(error, CallNotStarted) or is_configuration_error(error):
        return False
    if isinstance(error, ClientError):
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return status >= 500 or error_code(error) in RETRYABLE_CODES
    return True


def archive_target(
    s3: S3Client,
    bucket: str,
    *,
    run_at: datetime,
    target: Target | None,
    lines: Iterable[str],
    attempts: int = DEFAULT_ATTEMPTS,
    prefix: str = ARCHIVE_PREFIX,
    sleep: Callable[[float], None] = time.sleep,
) -> ArchiveWritten:
    """Store one target's records of one run as one object (module doc); never raises for S3.

    ``run_at``: the run's scan time, the records' ``runAt`` (``ScanResult.scanned_at``). No lines, no
    object. ``attempts`` (1 to 10) bounds the tries of the PutObject, ``sleep`` waits between them.
    """
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 10:
        raise ValueError(f"attempts={attempts!r} is not allowed: use a whole number from 1 to 10")
    body, records, raw = gzip_lines(lines)
    if not records:
        return ArchiveWritten()
    key = object_key(run_at, target, prefix=prefix)
    for attempt in range(1, attempts + 1):
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=CONTENT_TYPE)
        except (ClientError, BotoCoreError) as error:
            if attempt == attempts or not worth_retrying(error):
                tries = "1 attempt" if attempt == 1 else f"{attempt} attempts"
                failure = (
                    f"s3://{bucket}/{key} ({records} records): {describe(error)} (gave up after {tries})"
                )
                return ArchiveWritten(failures=(failure,))
            sleep(RETRY_BASE_SECONDS * 2 ** (attempt - 1))
        else:
            return ArchiveWritten(objects=1, records=records, bytes=len(body), raw_bytes=raw)
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns on its last attempt

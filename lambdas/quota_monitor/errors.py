"""Every error type of the monitor, and the one way a failure from AWS is put into words.

Between the steps of a run failures are data (:class:`quota_monitor.models.ScanFailure`, the
reports of the publish and alert steps); these exceptions are what a step raises inside itself,
and :func:`describe_error` is how any of them becomes the cause and message of a log line, a
``ScanErrors`` failure or a line on stderr.
"""

from __future__ import annotations

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    CredentialRetrievalError,
    NoAuthTokenError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    SSOError,
    TokenRetrievalError,
)


# -- settings -------------------------------------------------------------------------------------
class ConfigError(ValueError):
    """A setting that cannot be used; the message names the variable, its value and what is allowed."""


class InvalidLevels(ValueError):  # noqa: N818 - reads as what it is
    """Alert levels that are not ascending whole percentages from 1 to 100."""


# -- reading API Gateway --------------------------------------------------------------------------
class MalformedResponse(ValueError):  # noqa: N818 - reads as what happened
    """A response that botocore could not read as the operation's result."""


class DeadlineReached(RuntimeError):  # noqa: N818 - reads as what happened
    """No new API call is started after the run's deadline."""


class CallNotStarted(BotoCoreError):  # noqa: N818 - reads as what happened
    """A call that could not finish before the run ends was not started
    (:func:`quota_monitor.clients.refuse_late_calls`); callers take it as any failed call."""

    fmt = "{operation} not started: it can take {longest:.1f} s and the run ends in {left:.1f} s"


class BudgetUnavailable(DeadlineReached):
    """No API call is started: the API budget the monitor's runs share (in DynamoDB) could not be
    read or reserved, and this run may not call without it (the fast path)."""


class MalformedResource(ValueError):  # noqa: N818 - reads as what happened
    """A usage plan or API key that is not shaped as the API documents."""


class UsagePaginationError(ValueError):
    """GetUsage paging could not go on correctly."""


class InvalidStartingToken(UsagePaginationError):  # noqa: N818 - the name botocore gives the same error
    """A StartingToken this paginator did not issue for this request."""


class StaleStartingToken(UsagePaginationError):  # noqa: N818 - reads as what happened
    """A StartingToken for a page that no longer holds the keys it was issued for."""


class PaginationLoop(UsagePaginationError):  # noqa: N818 - reads as what happened
    """The service returned a ``position`` that was already requested."""


class MalformedUsagePage(UsagePaginationError):  # noqa: N818 - reads as what happened
    """A GetUsage response that is not shaped as the API documents."""


# -- computing usage ------------------------------------------------------------------------------
class UsageDataError(ValueError):
    """GetUsage data for a key that cannot be read as daily [used, remaining] counts."""


# -- delivering -----------------------------------------------------------------------------------
class SlackDeliveryError(RuntimeError):
    """The webhook refused the message, or kept failing; raised so that Lambda retries and counts it."""


# -- a run ----------------------------------------------------------------------------------------
class RunFailed(RuntimeError):  # noqa: N818 - reads as what happened
    """The run could not do its job; raised so that Lambda retries it and counts an error."""


#: What no call will escape: credentials or region missing or unusable.
CONFIGURATION_ERRORS = (
    NoCredentialsError,
    PartialCredentialsError,
    NoRegionError,
    NoAuthTokenError,
    CredentialRetrievalError,
    TokenRetrievalError,
    SSOError,  # an SSO session that expired or was never started (aws sso login)
)
#: AWS refusing the credentials themselves (expired, unknown, badly signed), not what they may do.
CREDENTIAL_ERROR_CODES = frozenset(
    {
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
    }
)


def is_configuration_error(error: BaseException) -> bool:
    """Credentials or region missing, expired or refused: every call would fail alike."""
    if isinstance(error, CONFIGURATION_ERRORS):
        return True
    return isinstance(error, ClientError) and error_code(error) in CREDENTIAL_ERROR_CODES


def error_code(error: ClientError) -> str | None:
    code = error.response.get("Error", {}).get("Code")
    return str(code) if code else None


def describe_error(error: BaseException) -> tuple[str, str]:
    """(cause, message) for a log line or a failure record: AWS's error code where there is one."""
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return str(details.get("Code") or "ClientError"), str(details.get("Message") or error)
    if isinstance(error, BudgetUnavailable):
        return "BudgetUnavailable", str(error)
    if isinstance(error, DeadlineReached):
        return "Skipped", str(error)
    return type(error).__name__, str(error)


def describe(error: BaseException) -> str:
    """``"<cause>: <message>"``, as :func:`describe_error` reads it."""
    cause, message = describe_error(error)
    return f"{cause}: {message}"

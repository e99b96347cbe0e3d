"""Typed failures of fcapi, each with its own CLI exit code.

Callers (the runner, the CLI) decide what to do by the kind of failure, not by parsing
messages, and a wrapper script can tell "the site refused us" from "the project failed" by
the exit code alone. Errors name the endpoint and the user so that one line on stderr is
enough to act on; they never hold a password or a token, because they end up in logs and
reports.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes of `python -m fcapi`, one per failure kind."""

    OK = 0
    OTHER = 1
    USAGE = 2
    AUTH = 3
    PERMISSION = 4
    NOT_FOUND = 5
    CONFLICT = 6
    TIMEOUT = 7
    RATE_LIMITED = 8
    TRANSPORT = 9
    PROJECT_FAILED = 10


REDACTED = "***"


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every secret in `text` by a marker.

    Server `detail` messages are copied into errors; a server may echo what it was sent
    (a project token it refuses, say), so known secrets are scrubbed before they are kept.
    Very short strings are left alone: they would blank out ordinary words.
    """
    for secret in secrets:
        if secret and len(secret) >= 4 and secret in text:
            text = text.replace(secret, REDACTED)
    return text


class FcError(Exception):
    """Base of every fcapi failure."""

    exit_code: ExitCode = ExitCode.OTHER

    def __init__(
        self, message: str, *, endpoint: str | None = None, user: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.endpoint = endpoint
        self.user = user

    def __str__(self) -> str:
        where = []
        if self.endpoint:
            where.append(self.endpoint)
        if self.user:
            where.append(f"user {self.user}")
        return f"{self.message} ({', '.join(where)})" if where else self.message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(message={self.message!r}, endpoint={self.endpoint!r}, "
            f"user={self.user!r})"
        )


class AuthError(FcError):
    """Login refused, or the site kept answering 401 after a refresh and a fresh login."""

    exit_code = ExitCode.AUTH


class MissingCredentials(AuthError):
    """No password is known for a user; says where it was looked for."""

    def __init__(self, user: str, looked_in: Iterable[str]) -> None:
        places = ", ".join(looked_in) or "nowhere"
        super().__init__(
            f"no password for {user}: looked in {places}; add a line '{user}=PASSWORD' "
            "to the .env file or set it in the environment",
            user=user,
        )
        self.looked_in = list(looked_in)


class PermissionDenied(FcError):
    """HTTP 403: the site refused. Retrying would only make it worse."""

    exit_code = ExitCode.PERMISSION


class RateLimited(FcError):
    """HTTP 429 that persisted after honouring `Retry-After`."""

    exit_code = ExitCode.RATE_LIMITED

    def __init__(
        self,
        message: str,
        *,
        endpoint: str | None = None,
        user: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, endpoint=endpoint, user=user)
        self.retry_after = retry_after


class NotFound(FcError):
    exit_code = ExitCode.NOT_FOUND


class Conflict(FcError):
    """HTTP 409 or 400: the request does not fit the state (a refused status move, say)."""

    exit_code = ExitCode.CONFLICT


class ProtocolError(FcError):
    """The other side answered something this client does not understand."""

    exit_code = ExitCode.TRANSPORT


class TransportError(FcError):
    """No answer: connection refused or reset, timeouts, 5xx after the retries."""

    exit_code = ExitCode.TRANSPORT


class WaitTimeout(FcError):
    """A wait missed its deadline; the message says what was waited for and how long."""

    exit_code = ExitCode.TIMEOUT


class ProjectFailed(FcError):
    """The project ended in `error` or `failed`: the platform ran it and it did not succeed."""

    exit_code = ExitCode.PROJECT_FAILED

    def __init__(
        self,
        message: str,
        *,
        endpoint: str | None = None,
        user: str | None = None,
        project_id: int | None = None,
        status: str | None = None,
    ) -> None:
        super().__init__(message, endpoint=endpoint, user=user)
        self.project_id = project_id
        self.status = status


def one_line(text: str) -> str:
    """`text` with every run of whitespace (newlines too) folded into one space.

    A failure is shown as one line on stderr, so that a wrapper script can log or grep it;
    server details and OS errors may carry newlines.
    """
    return " ".join(text.split())


def detail_text(detail: object) -> str:
    """Flatten a DRF-style `detail` (a string, a list, or a dict of lists) to one line."""
    if detail is None:
        return ""
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        return "; ".join(detail_text(d) for d in detail)
    if isinstance(detail, dict):
        return "; ".join(f"{k}: {detail_text(v)}" for k, v in detail.items())
    return str(detail)


def error_for_status(
    status: int,
    detail: str,
    *,
    endpoint: str,
    user: str | None,
) -> FcError:
    """The typed error for an HTTP error status that is final (no retry or refresh left)."""
    said = f": {detail}" if detail else ""
    if status == 401:
        return AuthError(f"not authenticated{said}", endpoint=endpoint, user=user)
    if status == 403:
        return PermissionDenied(
            f"the site refused the request (HTTP 403){said}. Stop here: check that the account "
            "is active, has accepted the terms and may do this; do not retry in a loop",
            endpoint=endpoint,
            user=user,
        )
    if status == 404:
        return NotFound(f"not found (HTTP 404){said}", endpoint=endpoint, user=user)
    if status in (400, 409, 422):
        return Conflict(f"refused (HTTP {status}){said}", endpoint=endpoint, user=user)
    if status == 429:
        return RateLimited(
            f"rate limited (HTTP 429){said}; slow down", endpoint=endpoint, user=user
        )
    if status >= 500:
        return TransportError(f"server error (HTTP {status}){said}", endpoint=endpoint, user=user)
    return ProtocolError(f"unexpected HTTP {status}{said}", endpoint=endpoint, user=user)

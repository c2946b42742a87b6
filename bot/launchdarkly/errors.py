"""What can go wrong when flagops talks to LaunchDarkly: one exception per outcome.

::

    FlagopsError (commands.errors)
    └── LaunchDarklyError           status, code, message, id, method, path (never the token)
        ├── InvalidRequest          400 invalid_request: LaunchDarkly refused the change as written
        │   └── ConflictError       400: the change would make a pending approval request or
        │                           scheduled change fail (retry with ignore_conflicts=True)
        ├── Unauthorized            401: the token is unknown, revoked or expired
        ├── Forbidden               403: the token's role may not do this (or a beta route was
        │                           called without ``LD-API-Version: beta``)
        ├── NotFound                404: no such project, flag, environment, request or link
        ├── ApprovalRequired        405: the environment requires an approval request
        ├── OptimisticLockError     409: the resource changed meanwhile; re-read and retry
        ├── PatchFailed             422: the patch could not be applied to the resource
        ├── RateLimited             429, after waiting as long as the client allows
        ├── ServerError             5xx on a read, after the client's retries
        ├── Unreachable             the request never reached LaunchDarkly (safe to retry)
        │   ├── TimeoutError_       no connection in time (or a read that timed out)
        │   └── ConnectionFailed    no connection at all (DNS, refused, TLS)
        └── OutcomeUnknown          a write (PATCH/POST/DELETE) that may or may not have been
                                    applied: timeout after sending, connection dropped, or a 5xx
                                    answer. Never resent; re-read the resource to find out.

``str(error)`` is one plain sentence, safe to show in Slack: it names what failed and
LaunchDarkly's own message and request id, and never contains a token (tokens only ever travel
in the ``Authorization`` header, which no error records).
"""

from __future__ import annotations

from typing import Any

from commands.errors import FlagopsError


class LaunchDarklyError(FlagopsError):
    """A LaunchDarkly call failed.

    Attributes:
        status: the HTTP status, or None when no response arrived.
        code: LaunchDarkly's error code (``invalid_request``, ``not_found``...), or None.
        message: LaunchDarkly's message, or a description of what happened.
        id: LaunchDarkly's request id (for its support), or None.
        method: the HTTP method of the request.
        path: the request path, without the query string.
        body: the decoded error body (a dict) when there was one, for details such as
            ``errors`` or ``conflicts``.
    """

    #: What the call was trying to do, for the sentence ``str()`` builds.
    summary = "LaunchDarkly refused the request"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        id: str | None = None,
        method: str = "",
        path: str = "",
        body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.id = id
        self.method = method
        self.path = path
        self.body = body or {}

    def __str__(self) -> str:
        details = [d for d in (self.code, f"{self.method} {self.path}".strip()) if d]
        if self.id:
            details.append(f"request id {self.id}")
        text = self.message.rstrip(".")
        suffix = f" ({', '.join(details)})" if details else ""
        return f"{self.summary}: {text}{suffix}."

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, "
            f"message={self.message!r}, id={self.id!r}, method={self.method!r}, path={self.path!r})"
        )


class InvalidRequest(LaunchDarklyError):
    """400: the request was refused as written (bad instruction, unknown variation, ...)."""

    summary = "LaunchDarkly refused the change"


class ConflictError(InvalidRequest):
    """400: the change conflicts with a pending approval request or scheduled change.

    ``conflicts`` lists LaunchDarkly's conflict entries (``instruction``, ``reason``) when the body
    carried them.
    """

    summary = "The change conflicts with a pending change"

    @property
    def conflicts(self) -> list[dict[str, Any]]:
        """The conflict entries of the error body (may be empty)."""
        raw = self.body.get("conflicts")
        return [c for c in raw if isinstance(c, dict)] if isinstance(raw, list) else []


class Unauthorized(LaunchDarklyError):
    """401: the access token is not valid."""

    summary = "LaunchDarkly did not accept the access token"


class Forbidden(LaunchDarklyError):
    """403: the token's role does not allow this action."""

    summary = "LaunchDarkly denied access"


class NotFound(LaunchDarklyError):
    """404: the project, flag, environment or other resource does not exist."""

    summary = "Not found in LaunchDarkly"


class ApprovalRequired(LaunchDarklyError):
    """405: changes to this flag in this environment need an approval request."""

    summary = "This change needs an approval in LaunchDarkly"


class OptimisticLockError(LaunchDarklyError):
    """409: the resource changed since it was read."""

    summary = "The flag changed in LaunchDarkly meanwhile"


class PatchFailed(LaunchDarklyError):
    """422: the patch could not be applied to the resource."""

    summary = "LaunchDarkly could not apply the patch"


class RateLimited(LaunchDarklyError):
    """429: still rate limited after waiting as long as the client allows.

    ``retry_after`` is the wait (seconds) LaunchDarkly last asked for, when it said.
    """

    summary = "LaunchDarkly is rate limiting requests"

    def __init__(self, message: str, *, retry_after: float | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.retry_after = retry_after


class ServerError(LaunchDarklyError):
    """5xx on a read, after the client's retries."""

    summary = "LaunchDarkly had an internal error"


class Unreachable(LaunchDarklyError):
    """The request never reached LaunchDarkly, so nothing changed; it is safe to try again."""

    summary = "Could not reach LaunchDarkly"


class TimeoutError_(Unreachable):
    """A connection (or, for a read, an answer) did not come in time."""

    summary = "LaunchDarkly did not answer in time"


class ConnectionFailed(Unreachable):
    """No connection to LaunchDarkly could be made."""

    summary = "Could not connect to LaunchDarkly"


class OutcomeUnknown(LaunchDarklyError):
    """A write may or may not have been applied; it was not resent. Re-read to find out."""

    summary = "It is not known whether LaunchDarkly applied the change"


_BY_STATUS: dict[int, type[LaunchDarklyError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: ApprovalRequired,
    409: OptimisticLockError,
    422: PatchFailed,
    429: RateLimited,
}


def is_conflict_body(body: dict[str, Any]) -> bool:
    """Whether a 400 body reports a conflict with a pending change rather than a plain refusal.

    LaunchDarkly does not document the body of this 400. We accept every reading seen in its
    schemas: a ``conflict``-named code, a non-empty ``conflicts`` array (the shape approval
    requests use for conflicts), or a message that speaks of a conflict with pending or scheduled
    changes. The sandbox sends ``invalid_request`` with a ``conflicts`` array.
    """
    code = str(body.get("code") or "")
    if "conflict" in code:
        return True
    conflicts = body.get("conflicts")
    if isinstance(conflicts, list) and conflicts:
        return True
    message = str(body.get("message") or "").lower()
    return "conflict" in message and ("pending" in message or "scheduled" in message)


def error_for_status(
    status: int, body: dict[str, Any], *, method: str, path: str, fallback: str
) -> LaunchDarklyError:
    """Build the exception for an error response.

    Args:
        status: the HTTP status (>= 400).
        body: the decoded JSON body, or ``{}`` when it was not a JSON object.
        method: the request method.
        path: the request path (no query string).
        fallback: the message to use when the body has none (usually the reason phrase).

    Returns:
        The matching ``LaunchDarklyError`` subclass instance (``ServerError`` for any 5xx and
        ``LaunchDarklyError`` itself for an unlisted status).
    """
    message = body.get("message")
    code = body.get("code")
    request_id = body.get("id")
    cls: type[LaunchDarklyError]
    if status == 400 and is_conflict_body(body):
        cls = ConflictError
    elif status >= 500:
        cls = ServerError
    else:
        cls = _BY_STATUS.get(status, LaunchDarklyError)
    return cls(
        message if isinstance(message, str) and message else fallback,
        status=status,
        code=code if isinstance(code, str) else None,
        id=request_id if isinstance(request_id, str) else None,
        method=method,
        path=path,
        body=body,
    )

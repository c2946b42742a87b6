"""The LaunchDarkly REST client: the only code in flagops that talks to LaunchDarkly.

Retry policy (what happens when a call does not simply succeed):

* **429 (rate limited)**: LaunchDarkly did not apply the request, so it is safe to send it again,
  write or not. The client waits as long as ``Retry-After`` (seconds) says, else until
  ``X-Ratelimit-Reset`` (epoch milliseconds), else an exponential backoff, plus up to 25% random
  jitter so that many waiting clients do not return at the same instant. The waits of one call add
  up to at most ``max_rate_limit_wait`` seconds; when the next wait would exceed that, the call
  raises ``RateLimited``.
* **Reads (GET)** are retried on 5xx answers, timeouts and connection errors, ``read_retries``
  times with exponential backoff and jitter; then ``ServerError``, ``TimeoutError_`` or
  ``ConnectionFailed``.
* **Writes (PATCH, POST, DELETE)** are never resent once they may have reached LaunchDarkly. A
  timeout after the request was sent, a connection dropped mid-request, or a 5xx answer raises
  ``OutcomeUnknown``: the change may or may not have happened, and the caller re-reads the flag to
  find out. Only failures that prove the request never left (no connection could be made, no
  connection in time, no free connection in the pool) are retried for writes, like reads.
* Every other error status raises its exception at once (see ``errors``).

Every call takes ``token``: the LaunchDarkly access token to act with (a Slack user's linked
token), or None for the client's own service token. Tokens travel only in the ``Authorization``
header (no "Bearer" prefix, as LaunchDarkly wants), and never appear in an error.

One client (one ``httpx.AsyncClient``, one connection pool) per process; close it with
``aclose()`` or use it as an async context manager.
"""

from __future__ import annotations

import asyncio
import functools
import json
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from importlib import metadata
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, SecretStr

from bot.launchdarkly.errors import (
    ConnectionFailed,
    LaunchDarklyError,
    OutcomeUnknown,
    RateLimited,
    ServerError,
    TimeoutError_,
    error_for_status,
)
from bot.launchdarkly.models import (
    ApprovalRequest,
    AuditEntry,
    CallerIdentity,
    ContextEvaluation,
    Environment,
    FeatureFlag,
    FlagLink,
    FlagStatus,
    LDModel,
    Member,
    Page,
    Project,
    ScheduledChange,
    Segment,
    Webhook,
)
from commands.instructions import (
    FlagJsonPatch,
    FlagMergePatch,
    Instruction,
    JsonPatch,
    MergePatch,
    SemanticPatch,
)
from commands.keys import check_key
from commands.roles import CustomRole

WRITE_WATCH: ContextVar[Callable[[], None] | None] = ContextVar("flagops_ld_write_watch", default=None)
"""Called before each call that may change something in LaunchDarkly, in the context that makes it
(``bot.inbox``: the row being worked reports what its write did even when its lease was lost)."""

API_VERSION = "20240415"
BETA_API_VERSION = "beta"
SEMANTIC_PATCH_CONTENT_TYPE = "application/json; domain-model=launchdarkly.semanticpatch"

COMMERCIAL_URL = "https://app.launchdarkly.com"
FEDERAL_URL = "https://app.launchdarkly.us"
EU_URL = "https://app.eu.launchdarkly.com"


def _version() -> str:
    try:
        return metadata.version("flagops")
    except metadata.PackageNotFoundError:  # running from a checkout that was never installed
        return "0"


DEFAULT_USER_AGENT = f"flagops/{_version()}"

ReviewKind = Literal["approve", "decline", "comment"]
FlagState = Literal["live", "deprecated", "archived"]
ModelT = TypeVar("ModelT", bound=LDModel)

_READ_METHODS = frozenset({"GET", "HEAD"})
# Failures that prove the request never left this process: safe to retry even for writes.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def approval_filter(
    *,
    review_status: Sequence[str] | None = None,
    status: Sequence[str] | None = None,
    notify_member_ids: Sequence[str] | None = None,
    requestor_id: str | None = None,
    project_key: str | None = None,
    resource_id: str | None = None,
    resource_kind: str | None = None,
) -> str | None:
    """Build the ``filter`` of ``GET /api/v2/approval-requests``.

    The syntax is ``field operator value`` terms joined by commas, lists as JSON arrays, e.g.
    ``reviewStatus anyOf ["pending"], requestorId equals 123``.

    Returns:
        The filter string, or None when no filter was given.
    """
    terms: list[str] = []
    for name, values in (
        ("reviewStatus", review_status),
        ("status", status),
        ("notifyMemberIds", notify_member_ids),
    ):
        if values:
            terms.append(f"{name} anyOf {json.dumps(list(values))}")
    for name, value in (
        ("requestorId", requestor_id),
        ("projectKey", project_key),
        ("resourceId", resource_id),
        ("resourceKind", resource_kind),
    ):
        if value:
            terms.append(f"{name} equals {value}")
    return ", ".join(terms) or None


def flag_resource_id(project: str, environment: str, flag: str) -> str:
    """LaunchDarkly's resource id of a flag in an environment (``proj/p:env/e:flag/f``)."""
    return f"proj/{project}:env/{environment}:flag/{flag}"


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One verifying TLS context per process (loading the CA bundle costs ~50 ms; every client
    built afterwards, e.g. after a restart of the runtime, shares it). httpx's own default."""
    return httpx.create_ssl_context()


class LaunchDarklyClient:
    """An async LaunchDarkly REST client (see the module docstring for the retry policy).

    Args:
        base_url: ``https://app.launchdarkly.com`` (default region), ``https://app.launchdarkly.us``
            (federal), ``https://app.eu.launchdarkly.com`` (EU), or a sandbox's URL.
        token: the service access token used when a call gives no ``token``.
        timeout: seconds for connecting, and for each read or write on the socket.
        max_rate_limit_wait: the most seconds one call may spend waiting out 429 answers.
        read_retries: how many times a GET is retried after a 5xx or a transport failure.
        retry_backoff: the first backoff in seconds (doubled at each retry).
        transport: an httpx transport (tests, proxies); None for the default.
        user_agent: the ``User-Agent`` header.
        sleep: the coroutine used to wait (tests may record waits).
    """

    def __init__(
        self,
        base_url: str,
        token: SecretStr | str,
        *,
        timeout: float = 10.0,
        max_rate_limit_wait: float = 30.0,
        read_retries: int = 2,
        retry_backoff: float = 0.5,
        transport: httpx.AsyncBaseTransport | None = None,
        user_agent: str = DEFAULT_USER_AGENT,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._token = token if isinstance(token, SecretStr) else SecretStr(token)
        self.max_rate_limit_wait = max_rate_limit_wait
        self.read_retries = read_retries
        self.retry_backoff = retry_backoff
        self._sleep = sleep
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(timeout),
            transport=transport,
            verify=tls_context(),
            headers={"User-Agent": user_agent, "Accept": "application/json"},
        )

    @property
    def base_url(self) -> str:
        """The LaunchDarkly base URL this client talks to."""
        return str(self._http.base_url).rstrip("/")

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> LaunchDarklyClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    # --- the one request path -----------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        beta: bool = False,
        token: str | None = None,
        changes_nothing: bool = False,
    ) -> Any:
        """Send one call, applying the retry policy; return the decoded JSON (None for no body).

        ``changes_nothing``: a write that cannot change anything (a dry run) is retried and
        explained like a read: its lost answer is a timeout, never an unknown outcome.

        Raises:
            LaunchDarklyError: the subclass for the outcome (see ``errors``).
        """
        headers = {
            "Authorization": token if token is not None else self._token.get_secret_value(),
            "LD-API-Version": BETA_API_VERSION if beta else API_VERSION,
        }
        content: bytes | None = None
        if body is not None:
            headers["Content-Type"] = content_type
            content = json.dumps(body).encode()
        is_read = method in _READ_METHODS or changes_nothing
        if not is_read and (watch := WRITE_WATCH.get()) is not None:
            watch()
        query = {k: str(v) for k, v in (params or {}).items()}
        rate_limit_waited = 0.0
        rate_limit_hits = 0
        retries = 0
        while True:
            try:
                response = await self._http.request(
                    method, path, params=query, content=content, headers=headers
                )
            except _NOT_SENT as exc:
                if retries < self.read_retries:
                    retries += 1
                    await self._sleep(self._backoff(retries))
                    continue
                raise self._transport_error(exc, method, path, sent=False) from exc
            except httpx.TransportError as exc:
                if is_read and retries < self.read_retries:
                    retries += 1
                    await self._sleep(self._backoff(retries))
                    continue
                raise self._transport_error(exc, method, path, sent=not changes_nothing) from exc

            status = response.status_code
            if status == 429:
                rate_limit_hits += 1
                wait = self._rate_limit_wait(response, rate_limit_hits)
                if rate_limit_waited + wait > self.max_rate_limit_wait:
                    error = self._error(response, method, path)
                    raise RateLimited(
                        error.message,
                        retry_after=wait,
                        status=429,
                        code=error.code,
                        id=error.id,
                        method=method,
                        path=path,
                        body=error.body,
                    )
                rate_limit_waited += wait
                await self._sleep(wait)
                continue
            if status >= 500:
                if is_read and retries < self.read_retries:
                    retries += 1
                    await self._sleep(self._backoff(retries))
                    continue
                error = self._error(response, method, path)
                if is_read:
                    raise error
                raise OutcomeUnknown(
                    f"LaunchDarkly answered {status} ({error.message}); the change may or may not "
                    "have been applied",
                    status=status,
                    code=error.code,
                    id=error.id,
                    method=method,
                    path=path,
                    body=error.body,
                )
            if status >= 400:
                raise self._error(response, method, path)
            if status == 204 or not response.content:
                return None
            try:
                return response.json()
            except ValueError as exc:
                raise ServerError(
                    "LaunchDarkly sent a response that is not JSON",
                    status=status,
                    method=method,
                    path=path,
                ) from exc

    def _backoff(self, attempt: int) -> float:
        base = self.retry_backoff * 2.0 ** (attempt - 1)
        return base * (1 + 0.25 * random.random())

    def _rate_limit_wait(self, response: httpx.Response, hits: int) -> float:
        """Seconds to wait before resending after a 429, jitter included."""
        wait: float | None = None
        retry_after = response.headers.get("Retry-After")
        if retry_after is not None:
            try:
                wait = max(0.0, float(retry_after))
            except ValueError:
                wait = None  # an HTTP date: rare; fall through to the reset header
        reset = response.headers.get("X-Ratelimit-Reset")
        if wait is None and reset is not None:
            try:
                wait = max(0.0, int(reset) / 1000 - time.time())
            except ValueError:
                wait = None
        if wait is None:
            wait = self.retry_backoff * 2.0 ** (hits - 1)
        return wait * (1 + 0.25 * random.random())

    @staticmethod
    def _error(response: httpx.Response, method: str, path: str) -> LaunchDarklyError:
        try:
            decoded = response.json()
        except ValueError:
            decoded = None
        body = decoded if isinstance(decoded, dict) else {}
        fallback = response.reason_phrase or f"HTTP {response.status_code}"
        return error_for_status(response.status_code, body, method=method, path=path, fallback=fallback)

    @staticmethod
    def _transport_error(
        exc: httpx.TransportError, method: str, path: str, *, sent: bool
    ) -> LaunchDarklyError:
        context: dict[str, Any] = {"method": method, "path": path}
        if sent and method not in _READ_METHODS:
            what = "timed out" if isinstance(exc, httpx.TimeoutException) else "lost its connection"
            return OutcomeUnknown(
                f"the request {what} after it was sent; the change may or may not have been applied",
                **context,
            )
        if isinstance(exc, httpx.TimeoutException):
            return TimeoutError_(f"no answer in time ({type(exc).__name__})", **context)
        return ConnectionFailed(f"connection failed ({type(exc).__name__})", **context)

    async def _get_model(self, model: type[ModelT], path: str, **kwargs: Any) -> ModelT:
        return model.model_validate(await self._request("GET", path, **kwargs))

    async def _get_page(self, item: type[ModelT], path: str, **kwargs: Any) -> Page[ModelT]:
        return Page[item].model_validate(await self._request("GET", path, **kwargs))  # type: ignore[valid-type]

    @staticmethod
    async def _collect(
        fetch: Callable[[int, int], Awaitable[Page[ModelT]]], page_size: int, max_items: int
    ) -> list[ModelT]:
        """Page through a collection with ``fetch(limit, offset)``, stopping at ``max_items``."""
        items: list[ModelT] = []
        offset = 0
        while len(items) < max_items:
            page = await fetch(min(page_size, max_items - len(items)), offset)
            items.extend(page.items)
            offset += len(page.items)
            total = page.total_count
            if not page.items or (total is not None and offset >= total):
                break
            if total is None and not page.has_next:
                break
        return items[:max_items]

    # --- flags --------------------------------------------------------------------------------

    async def get_flag(
        self, project: str, key: str, env: str | Sequence[str] | None = None, *, token: str | None = None
    ) -> FeatureFlag:
        """Get one flag (``GET /api/v2/flags/{project}/{key}``).

        Args:
            env: only these environments (a key or keys); None for all.

        Raises:
            NotFound: no such project or flag.
        """
        params = {"env": env if isinstance(env, str) else ",".join(env)} if env else None
        return await self._get_model(
            FeatureFlag, f"/api/v2/flags/{_seg(project)}/{_seg(key)}", params=params, token=token
        )

    async def list_flags(
        self,
        project: str,
        *,
        query: str | None = None,
        tag: str | None = None,
        state: FlagState | None = None,
        env: str | Sequence[str] | None = None,
        summary: bool = True,
        limit: int = 20,
        offset: int = 0,
        token: str | None = None,
    ) -> Page[FeatureFlag]:
        """One page of a project's flags (``GET /api/v2/flags/{project}``).

        Args:
            query: text matched against flag keys and names (``filter=query:...``).
            tag: only flags with this tag.
            state: ``live``, ``deprecated`` or ``archived`` (``filter=state:...``).
            env: include the configuration of these environments (LaunchDarkly omits it otherwise).
            summary: False to include targets, rules and prerequisites of ``env``.
            limit, offset: the page.
        """
        params: dict[str, str | int] = {"limit": limit, "offset": offset}
        terms = [f"query:{query}" if query else "", f"state:{state}" if state else ""]
        if any(terms):
            params["filter"] = ",".join(t for t in terms if t)
        if tag:
            params["tag"] = tag
        if env:
            params["env"] = env if isinstance(env, str) else ",".join(env)
        if not summary:
            params["summary"] = "0"
        return await self._get_page(FeatureFlag, f"/api/v2/flags/{_seg(project)}", params=params, token=token)

    async def all_flags(
        self,
        project: str,
        *,
        query: str | None = None,
        tag: str | None = None,
        state: FlagState | None = None,
        env: str | Sequence[str] | None = None,
        summary: bool = True,
        page_size: int = 100,
        max_items: int = 1000,
        token: str | None = None,
    ) -> list[FeatureFlag]:
        """Every flag matching the filters (``list_flags`` page after page), at most ``max_items``."""

        async def fetch(limit: int, offset: int) -> Page[FeatureFlag]:
            return await self.list_flags(
                project,
                query=query,
                tag=tag,
                state=state,
                env=env,
                summary=summary,
                limit=limit,
                offset=offset,
                token=token,
            )

        return await self._collect(fetch, page_size, max_items)

    async def flag_statuses(self, project: str, env: str, *, token: str | None = None) -> list[FlagStatus]:
        """The status (new, active, inactive, launched) of every flag in an environment."""
        page = await self._get_page(
            FlagStatus, f"/api/v2/flag-statuses/{_seg(project)}/{_seg(env)}", token=token
        )
        return page.items

    async def patch_flag_semantic(
        self,
        project: str,
        key: str,
        patch: SemanticPatch,
        *,
        dry_run: bool = False,
        ignore_conflicts: bool = False,
        token: str | None = None,
    ) -> FeatureFlag:
        """Change a flag with semantic-patch instructions (all or nothing).

        Args:
            dry_run: validate and return the flag as it would be, changing nothing.
            ignore_conflicts: apply even if a pending approval request or scheduled change
                would then fail.

        Returns:
            The flag after the change (or as it would be, for a dry run).

        Raises:
            InvalidRequest: an instruction was refused. ConflictError: see ``ignore_conflicts``.
            ApprovalRequired: the environment needs an approval request.
            OutcomeUnknown: see the module docstring.
        """
        params = _flags(dryRun=dry_run, ignoreConflicts=ignore_conflicts)
        data = await self._request(
            "PATCH",
            f"/api/v2/flags/{_seg(project)}/{_seg(key)}",
            params=params,
            body=patch.body(),
            content_type=SEMANTIC_PATCH_CONTENT_TYPE,
            token=token,
            changes_nothing=dry_run,
        )
        return FeatureFlag.model_validate(data)

    async def patch_flag_json(
        self,
        project: str,
        key: str,
        patch: FlagJsonPatch,
        *,
        dry_run: bool = False,
        ignore_conflicts: bool = False,
        token: str | None = None,
    ) -> FeatureFlag:
        """Change a flag with a JSON patch (``{"patch": [...], "comment": ...}``); ``dry_run`` and
        ``ignore_conflicts`` as for :meth:`patch_flag_semantic`."""
        return await self._patch_flag_body(project, key, patch.body(), dry_run, ignore_conflicts, token)

    async def patch_flag_merge(
        self,
        project: str,
        key: str,
        patch: MergePatch | FlagMergePatch,
        *,
        dry_run: bool = False,
        ignore_conflicts: bool = False,
        token: str | None = None,
    ) -> FeatureFlag:
        """Change a flag with a JSON merge patch: a plain object of the fields to change, or
        ``{"merge": {...}, "comment": ...}`` to carry a comment; ``dry_run`` and
        ``ignore_conflicts`` as for :meth:`patch_flag_semantic`."""
        return await self._patch_flag_body(project, key, patch.body(), dry_run, ignore_conflicts, token)

    async def _patch_flag_body(
        self, project: str, key: str, body: Any, dry_run: bool, ignore_conflicts: bool, token: str | None
    ) -> FeatureFlag:
        """PATCH a flag with a plain JSON body (JSON patch or merge patch: ``application/json``)."""
        data = await self._request(
            "PATCH",
            f"/api/v2/flags/{_seg(project)}/{_seg(key)}",
            params=_flags(dryRun=dry_run, ignoreConflicts=ignore_conflicts),
            body=body,
            token=token,
            changes_nothing=dry_run,
        )
        return FeatureFlag.model_validate(data)

    # --- audit log ------------------------------------------------------------------------------

    async def list_audit_log(
        self,
        spec: str,
        *,
        after: int | None = None,
        before: int | None = None,
        limit: int = 20,
        token: str | None = None,
    ) -> Page[AuditEntry]:
        """One page of audit log entries for a resource specifier, newest first.

        Args:
            spec: e.g. ``proj/demo:env/test:flag/new-checkout`` (``env/*`` for every environment).
            after: only entries after this instant (epoch ms); before: only entries before it.
            limit: 1 to 20 (LaunchDarkly's bounds). Page on with ``before`` = the last entry's date.
        """
        params: dict[str, str | int] = {"spec": spec, "limit": max(1, min(limit, 20))}
        if after is not None:
            params["after"] = after
        if before is not None:
            params["before"] = before
        return await self._get_page(AuditEntry, "/api/v2/auditlog", params=params, token=token)

    async def get_audit_entry(self, entry_id: str, *, token: str | None = None) -> AuditEntry:
        """One audit log entry, with ``previousVersion`` / ``currentVersion`` where it has them."""
        return await self._get_model(AuditEntry, f"/api/v2/auditlog/{_seg(entry_id)}", token=token)

    # --- segments and evaluation ----------------------------------------------------------------

    async def list_segments(
        self, project: str, env: str, *, limit: int = 50, token: str | None = None
    ) -> Page[Segment]:
        """One page of an environment's segments (``GET /api/v2/segments/{project}/{env}``)."""
        return await self._get_page(
            Segment, f"/api/v2/segments/{_seg(project)}/{_seg(env)}", params={"limit": limit}, token=token
        )

    async def get_segment(self, project: str, env: str, key: str, *, token: str | None = None) -> Segment:
        """One segment of an environment (``GET /api/v2/segments/{project}/{env}/{key}``).

        Raises:
            NotFound: no such project, environment or segment.
        """
        return await self._get_model(
            Segment, f"/api/v2/segments/{_seg(project)}/{_seg(env)}/{_seg(key)}", token=token
        )

    async def evaluate_context(
        self,
        project: str,
        env: str,
        context: Mapping[str, Any],
        *,
        flag: str | None = None,
        token: str | None = None,
    ) -> list[ContextEvaluation]:
        """What the project's flags serve ``context`` in ``env``, and why (LaunchDarkly evaluates).

        ``POST /api/v2/projects/{project}/environments/{env}/flags/evaluate`` with the context as
        the body. It changes nothing, so it is retried like a read.

        Args:
            context: the context as LaunchDarkly's JSON (``commands.contexts``).
            flag: narrow to flags whose key or name contains this key (``filter=query equals``);
                the caller picks the one whose key is equal.

        Raises:
            InvalidRequest: LaunchDarkly refused the context.
        """
        params = {"filter": f"query equals {check_key(flag, 'flag key')}"} if flag else None
        data = await self._request(
            "POST",
            f"/api/v2/projects/{_seg(project)}/environments/{_seg(env)}/flags/evaluate",
            params=params,
            body=dict(context),
            token=token,
            changes_nothing=True,
        )
        return Page[ContextEvaluation].model_validate(data).items

    # --- projects, environments, members --------------------------------------------------------

    async def list_environments(
        self, project: str, *, limit: int = 20, offset: int = 0, token: str | None = None
    ) -> Page[Environment]:
        """One page of a project's environments, with their approval settings."""
        return await self._get_page(
            Environment,
            f"/api/v2/projects/{_seg(project)}/environments",
            params={"limit": limit, "offset": offset},
            token=token,
        )

    async def all_environments(
        self, project: str, *, page_size: int = 100, max_items: int = 500, token: str | None = None
    ) -> list[Environment]:
        """Every environment of a project (page after page), at most ``max_items``."""

        async def fetch(limit: int, offset: int) -> Page[Environment]:
            return await self.list_environments(project, limit=limit, offset=offset, token=token)

        return await self._collect(fetch, page_size, max_items)

    async def get_project(self, project: str, *, token: str | None = None) -> Project:
        """One project (``GET /api/v2/projects/{projectKey}``; environments not expanded)."""
        return await self._get_model(Project, f"/api/v2/projects/{_seg(project)}", token=token)

    async def patch_project(self, project: str, patch: JsonPatch, *, token: str | None = None) -> Project:
        """Change a project with a JSON patch, a bare array (tags come back deduplicated and
        sorted). Seed 004 documents no ``dryRun`` here: never send one (it could be applied)."""
        data = await self._request(
            "PATCH", f"/api/v2/projects/{_seg(project)}", body=patch.body(), token=token
        )
        return Project.model_validate(data)

    async def find_member_by_email(self, email: str, *, token: str | None = None) -> Member | None:
        """The account member with this exact email, or None."""
        page = await self._get_page(
            Member, "/api/v2/members", params={"filter": f"email:{email}"}, token=token
        )
        for member in page.items:
            if (member.email or "").lower() == email.lower():
                return member
        return None

    async def find_member_with_roles(self, email: str) -> Member | None:
        """The member with this exact email (``filter=email:``; ``query:`` would be a substring
        search), with its custom roles, role attributes and teams, or None."""
        page = await self._get_page(
            Member,
            "/api/v2/members",
            params={"filter": f"email:{email}", "expand": "customRoles,roleAttributes"},
        )
        for member in page.items:
            if (member.email or "").lower() == email.lower():
                return member
        # The filter is exact: its one answer is the member even when shown without an email.
        if len(page.items) == 1 and page.items[0].email is None:
            return page.items[0]
        return None

    async def get_custom_role(self, key: str) -> CustomRole:
        """One custom role and its policy (``GET /api/v2/roles/{key}``)."""
        return CustomRole.model_validate(await self._request("GET", f"/api/v2/roles/{_seg(key)}"))

    async def team_role_keys(self, team: str) -> list[str]:
        """The keys of a team's custom roles (``GET /api/v2/teams/{key}/roles``)."""
        data = await self._request("GET", f"/api/v2/teams/{_seg(team)}/roles", params={"limit": "100"})
        items = data.get("items") if isinstance(data, dict) else None
        return [str(i["key"]) for i in items or [] if isinstance(i, dict) and i.get("key")]

    async def get_member(self, member_id: str, *, token: str | None = None) -> Member:
        """One account member by id."""
        return await self._get_model(Member, f"/api/v2/members/{_seg(member_id)}", token=token)

    async def get_caller_identity(self, *, token: str | None = None) -> CallerIdentity:
        """Who the token belongs to (``GET /api/v2/caller-identity``; ``member_id`` is the member)."""
        return await self._get_model(CallerIdentity, "/api/v2/caller-identity", token=token)

    # --- flag links (beta) ----------------------------------------------------------------------

    async def create_flag_link(
        self,
        project: str,
        flag: str,
        *,
        deep_link: str,
        key: str | None = None,
        title: str | None = None,
        description: str | None = None,
        timestamp_ms: int | None = None,
        token: str | None = None,
    ) -> FlagLink:
        """Link a flag to an external URL (a Slack thread); a beta endpoint."""
        body: dict[str, Any] = {"deepLink": deep_link}
        for name, value in (
            ("key", key),
            ("title", title),
            ("description", description),
            ("timestamp", timestamp_ms),
        ):
            if value is not None:
                body[name] = value
        data = await self._request(
            "POST",
            f"/api/v2/flag-links/projects/{_seg(project)}/flags/{_seg(flag)}",
            body=body,
            beta=True,
            token=token,
        )
        return FlagLink.model_validate(data)

    async def list_flag_links(self, project: str, flag: str, *, token: str | None = None) -> list[FlagLink]:
        """The links of a flag; a beta endpoint."""
        page = await self._get_page(
            FlagLink,
            f"/api/v2/flag-links/projects/{_seg(project)}/flags/{_seg(flag)}",
            beta=True,
            token=token,
        )
        return page.items

    async def patch_flag_link(
        self, project: str, flag: str, link_id: str, patch: JsonPatch, *, token: str | None = None
    ) -> FlagLink:
        """Change a flag link with a JSON patch (a bare array); a beta endpoint."""
        data = await self._request(
            "PATCH",
            f"/api/v2/flag-links/projects/{_seg(project)}/flags/{_seg(flag)}/{_seg(link_id)}",
            body=patch.body(),
            beta=True,
            token=token,
        )
        return FlagLink.model_validate(data)

    # --- approval requests ----------------------------------------------------------------------

    @staticmethod
    def _approvals_path(project: str, flag: str, env: str) -> str:
        return (
            f"/api/v2/projects/{_seg(project)}/flags/{_seg(flag)}/environments/{_seg(env)}/approval-requests"
        )

    async def create_approval_request(
        self,
        project: str,
        flag: str,
        env: str,
        *,
        description: str,
        instructions: Sequence[Instruction],
        comment: str | None = None,
        notify_member_ids: Sequence[str] | None = None,
        notify_team_keys: Sequence[str] | None = None,
        execution_date: int | None = None,
        token: str | None = None,
    ) -> ApprovalRequest:
        """Ask for approval of ``instructions`` on a flag in an environment.

        Args:
            description: what the change is (shown to reviewers).
            execution_date: epoch ms at which an approved request applies itself.
        """
        body: dict[str, Any] = {"description": description, "instructions": _instructions(instructions)}
        if comment is not None:
            body["comment"] = comment
        if notify_member_ids:
            body["notifyMemberIds"] = list(notify_member_ids)
        if notify_team_keys:
            body["notifyTeamKeys"] = list(notify_team_keys)
        if execution_date is not None:
            body["executionDate"] = execution_date
        data = await self._request("POST", self._approvals_path(project, flag, env), body=body, token=token)
        return ApprovalRequest.model_validate(data)

    async def list_approval_requests(
        self, project: str, flag: str, env: str, *, token: str | None = None
    ) -> list[ApprovalRequest]:
        """The approval requests of a flag in an environment."""
        page = await self._get_page(ApprovalRequest, self._approvals_path(project, flag, env), token=token)
        return page.items

    async def get_approval_request(
        self, project: str, flag: str, env: str, request_id: str, *, token: str | None = None
    ) -> ApprovalRequest:
        """One approval request of a flag in an environment."""
        return await self._get_model(
            ApprovalRequest, f"{self._approvals_path(project, flag, env)}/{_seg(request_id)}", token=token
        )

    async def review_approval_request(
        self,
        project: str,
        flag: str,
        env: str,
        request_id: str,
        kind: ReviewKind,
        comment: str | None = None,
        *,
        token: str | None = None,
    ) -> ApprovalRequest:
        """Approve, decline or comment on a request, as the token's member.

        Raises:
            InvalidRequest: e.g. the member may not review their own request.
        """
        body: dict[str, Any] = {"kind": kind}
        if comment is not None:
            body["comment"] = comment
        data = await self._request(
            "POST",
            f"{self._approvals_path(project, flag, env)}/{_seg(request_id)}/reviews",
            body=body,
            token=token,
        )
        return ApprovalRequest.model_validate(data)

    async def apply_approval_request(
        self,
        project: str,
        flag: str,
        env: str,
        request_id: str,
        comment: str | None = None,
        *,
        token: str | None = None,
    ) -> ApprovalRequest:
        """Apply an approved request.

        Raises:
            InvalidRequest: the request is not approved, or no longer applies to the flag.
            OutcomeUnknown: see the module docstring.
        """
        body = {"comment": comment} if comment is not None else {}
        data = await self._request(
            "POST",
            f"{self._approvals_path(project, flag, env)}/{_seg(request_id)}/apply",
            body=body,
            token=token,
        )
        return ApprovalRequest.model_validate(data)

    async def delete_approval_request(
        self, project: str, flag: str, env: str, request_id: str, *, token: str | None = None
    ) -> None:
        """Delete an approval request."""
        await self._request(
            "DELETE", f"{self._approvals_path(project, flag, env)}/{_seg(request_id)}", token=token
        )

    async def list_all_approval_requests(
        self,
        *,
        filter: str | None = None,
        expand: Sequence[str] | None = None,
        limit: int = 20,
        offset: int = 0,
        token: str | None = None,
    ) -> Page[ApprovalRequest]:
        """One page of approval requests across flags (``GET /api/v2/approval-requests``).

        Args:
            filter: built with ``approval_filter``, e.g. pending requests notifying a member.
            expand: ``flag``, ``project``, ``environments``.
        """
        params: dict[str, str | int] = {"limit": limit, "offset": offset}
        if filter:
            params["filter"] = filter
        if expand:
            params["expand"] = ",".join(expand)
        return await self._get_page(ApprovalRequest, "/api/v2/approval-requests", params=params, token=token)

    async def get_approval_request_by_id(
        self, request_id: str, *, expand: Sequence[str] | None = None, token: str | None = None
    ) -> ApprovalRequest:
        """One approval request by id, whatever its flag (``GET /api/v2/approval-requests/{id}``)."""
        params = {"expand": ",".join(expand)} if expand else None
        return await self._get_model(
            ApprovalRequest, f"/api/v2/approval-requests/{_seg(request_id)}", params=params, token=token
        )

    # --- scheduled changes ----------------------------------------------------------------------

    @staticmethod
    def _scheduled_path(project: str, flag: str, env: str) -> str:
        return (
            f"/api/v2/projects/{_seg(project)}/flags/{_seg(flag)}/environments/{_seg(env)}/scheduled-changes"
        )

    async def create_scheduled_change(
        self,
        project: str,
        flag: str,
        env: str,
        *,
        execution_date: int,
        instructions: Sequence[Instruction],
        comment: str | None = None,
        ignore_conflicts: bool = False,
        token: str | None = None,
    ) -> ScheduledChange:
        """Schedule ``instructions`` to apply at ``execution_date`` (epoch ms).

        Raises:
            ConflictError: it conflicts with another pending change (see ``ignore_conflicts``).
        """
        body: dict[str, Any] = {"executionDate": execution_date, "instructions": _instructions(instructions)}
        if comment is not None:
            body["comment"] = comment
        data = await self._request(
            "POST",
            self._scheduled_path(project, flag, env),
            params=_flags(ignoreConflicts=ignore_conflicts),
            body=body,
            token=token,
        )
        return ScheduledChange.model_validate(data)

    async def list_scheduled_changes(
        self, project: str, flag: str, env: str, *, token: str | None = None
    ) -> list[ScheduledChange]:
        """The scheduled changes of a flag in an environment."""
        page = await self._get_page(ScheduledChange, self._scheduled_path(project, flag, env), token=token)
        return page.items

    async def get_scheduled_change(
        self, project: str, flag: str, env: str, change_id: str, *, token: str | None = None
    ) -> ScheduledChange:
        """One scheduled change."""
        return await self._get_model(
            ScheduledChange, f"{self._scheduled_path(project, flag, env)}/{_seg(change_id)}", token=token
        )

    async def delete_scheduled_change(
        self, project: str, flag: str, env: str, change_id: str, *, token: str | None = None
    ) -> None:
        """Cancel a scheduled change."""
        await self._request(
            "DELETE", f"{self._scheduled_path(project, flag, env)}/{_seg(change_id)}", token=token
        )

    # --- webhooks (an admin-level token: ``python -m bot webhook-setup`` only) -------------------

    async def create_webhook(
        self,
        url: str,
        secret: str,
        *,
        name: str,
        token: str,
        statements: Sequence[Mapping[str, Any]] | None = None,
    ) -> Webhook:
        """Create a signed webhook (``POST /api/v2/webhooks``, ``sign`` and ``on`` true).

        Raises:
            LaunchDarklyError: refused (403: the token is not admin-level).
        """
        body: dict[str, Any] = {"url": url, "secret": secret, "sign": True, "on": True, "name": name}
        if statements:
            body["statements"] = [dict(s) for s in statements]
        return Webhook.model_validate(await self._request("POST", "/api/v2/webhooks", body=body, token=token))

    async def list_webhooks(self, *, token: str) -> list[Webhook]:
        """Every webhook of the account (``GET /api/v2/webhooks``)."""
        data = await self._request("GET", "/api/v2/webhooks", token=token)
        return [Webhook.model_validate(item) for item in (data or {}).get("items") or []]

    async def delete_webhook(self, webhook_id: str, *, token: str) -> None:
        """Delete a webhook (``DELETE /api/v2/webhooks/{id}``)."""
        await self._request("DELETE", f"/api/v2/webhooks/{_seg(webhook_id)}", token=token)


def _seg(value: str) -> str:
    """A key or id as one URL path segment: checked against LaunchDarkly's key syntax, then
    percent-encoded, so no key can reach another endpoint (``x/../demo``, ``a?b``, ``a#b``, NUL).

    Raises:
        InvalidKey: the value is not a LaunchDarkly key; nothing is sent.
    """
    check_key(value)
    return quote(value, safe="")


def _flags(**flags: bool) -> dict[str, str | int]:
    """Query parameters for the boolean flags that are set (LaunchDarkly reads ``true``)."""
    return {name: "true" for name, value in flags.items() if value}


def _instructions(instructions: Sequence[Instruction]) -> list[dict[str, Any]]:
    return [_dump(i) for i in instructions]


def _dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True, exclude_unset=True)

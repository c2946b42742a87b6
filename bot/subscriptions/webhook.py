"""LaunchDarkly's webhook: checking ``X-LD-Signature``, and creating the webhook
(``python -m bot webhook-setup``).

The signature is the hex HMAC-SHA256 of the raw body with the webhook's secret, compared in
constant time. Nothing in the payload is signed by time, so a replay is stopped by the entry's
``_id`` (``SubscriptionStore.claim_entry``), not here.

The secret is generated here, sent once to LaunchDarkly (``POST /api/v2/webhooks``, ``sign: true``)
and stored Fernet-encrypted with ``FLAGOPS_SECRET_KEY``; it never appears in a log line or message.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass

from cryptography.fernet import InvalidToken
from pydantic import SecretStr

from bot.config import WEBHOOK_PATH, Settings
from bot.identity.accounts import fernet_for
from bot.launchdarkly import errors as ld_errors
from bot.launchdarkly.client import LaunchDarklyClient
from bot.subscriptions.store import WEBHOOK_ID, WEBHOOK_SECRET, SubscriptionStore

log = logging.getLogger("flagops.subscriptions")

WEBHOOK_NAME = "flagops (Slack channel subscriptions)"
#: Only flag changes are sent (the statements filter LaunchDarkly applies before delivery).
FLAG_STATEMENTS = ({"effect": "allow", "resources": ["proj/*:env/*:flag/*"], "actions": ["*"]},)


def sign(secret: str, body: bytes) -> str:
    """The ``X-LD-Signature`` LaunchDarkly sends for ``body``."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_ok(secret: str | None, body: bytes, signature: str | None) -> bool:
    """Whether ``signature`` is the body's HMAC with ``secret`` (constant time; never raises)."""
    if not secret or not signature or not signature.isascii():
        return False
    return hmac.compare_digest(sign(secret, body), signature.strip().lower())


class WebhookSecrets:
    """The stored secret, decrypted when needed (kept in memory once read)."""

    def __init__(self, store: SubscriptionStore, key: SecretStr | None) -> None:
        self.store = store
        self.key = key
        self._secret: str | None = None

    async def secret(self) -> str | None:
        """The webhook's secret, or None (no webhook set up, or no key to read it with)."""
        if self._secret is None and self.key is not None:
            stored = await self.store.setting(WEBHOOK_SECRET)
            if stored is not None:
                try:
                    self._secret = fernet_for(self.key).decrypt(stored.encode()).decode()
                except InvalidToken:
                    log.error("the stored webhook secret cannot be read with FLAGOPS_SECRET_KEY")
        return self._secret

    def forget(self) -> None:
        self._secret = None


class SetupError(Exception):
    """Why the webhook could not be set up, in words for the operator (no secret in it)."""


@dataclass(frozen=True)
class SetupResult:
    webhook_id: str
    url: str
    replaced: str | None  # the webhook this one replaces (deleted in LaunchDarkly), if any


async def setup_webhook(
    settings: Settings, store: SubscriptionStore, ld: LaunchDarklyClient, admin_token: SecretStr | None
) -> SetupResult:
    """Create the signed webhook in LaunchDarkly and store its secret (replacing an earlier one).

    Raises:
        SetupError: ``LD_ADMIN_TOKEN``, ``FLAGOPS_PUBLIC_URL`` or ``FLAGOPS_SECRET_KEY`` is missing, or
            LaunchDarkly refused (the reason, never the token or the secret).
    """
    missing = [
        name
        for name, value in (
            (
                "LD_ADMIN_TOKEN (an admin-level access token: creating webhooks needs one; "
                "read by this command only)",
                admin_token,
            ),
            ("FLAGOPS_PUBLIC_URL (where LaunchDarkly sends the changes)", settings.flagops_public_url),
            (
                "FLAGOPS_SECRET_KEY (the webhook's secret is stored encrypted with it)",
                settings.flagops_secret_key,
            ),
        )
        if value is None
    ]
    if missing or admin_token is None or settings.flagops_secret_key is None:
        raise SetupError("Set " + "; ".join(missing) + ". Nothing was created.")
    token = admin_token.get_secret_value()
    secret = secrets.token_hex(32)
    url = f"{settings.flagops_public_url}{WEBHOOK_PATH}"
    try:
        hook = await ld.create_webhook(
            url, secret, name=WEBHOOK_NAME, token=token, statements=FLAG_STATEMENTS
        )
    except ld_errors.LaunchDarklyError as error:
        raise SetupError(
            f"LaunchDarkly refused to create the webhook: {error.status} {error.code or ''}".strip()
        ) from None
    earlier = await store.setting(WEBHOOK_ID)
    ciphertext = fernet_for(settings.flagops_secret_key).encrypt(secret.encode()).decode()
    await store.set_settings({WEBHOOK_ID: hook.id, WEBHOOK_SECRET: ciphertext})
    if earlier and earlier != hook.id:
        try:
            await ld.delete_webhook(earlier, token=token)
        except ld_errors.LaunchDarklyError as error:
            log.warning("the earlier webhook %s could not be deleted: %s", earlier, error.status)
    return SetupResult(hook.id, url, earlier if earlier != hook.id else None)

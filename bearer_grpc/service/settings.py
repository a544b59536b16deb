"""Settings of the token service, with every default documented."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from bearer_grpc.core.keys import Algorithm
from bearer_grpc.core.tokens import DEFAULT_LEEWAY

MAX_ACCESS_TTL: Final = 24 * 3600
"""Longest access-token lifetime accepted (one day)."""
MAX_REFRESH_TTL: Final = 365 * 24 * 3600
"""Longest refresh-token lifetime accepted (one year)."""
MAX_SESSION_TTL: Final = MAX_REFRESH_TTL
"""Longest absolute session lifetime accepted (one year)."""
MAX_KEY_DELAY: Final = 30 * 24 * 3600
"""Longest time a staged key may be published before it signs (30 days): a key staged
further ahead would hold back every later rotation (keys take over in order)."""
MIN_KEY_ROTATION: Final = 60
"""Shortest scheduled key rotation interval (seconds)."""
MAX_KEY_ROTATION: Final = 365 * 24 * 3600
"""Longest scheduled key rotation interval (one year)."""
ADMIN_SCOPE: Final = "bearer-grpc:admin"
"""Scope that allows revoking any token by id (with a token for :data:`ADMIN_AUDIENCE`)."""
SECRET_HASH_KEY_SETTING: Final = "secret_hash_key"  # noqa: S105 (a setting name)
"""Stored setting holding the deployment's key for client-secret hashes."""
EPOCH_SETTING: Final = "revocation_epoch"
"""Stored setting naming this store's revocation log; a new store has a new one."""
DEFAULT_KEY_PUBLISH_DELAY: Final = 1800
"""Seconds a new key is published before it signs, by default (30 min). Verifiers that
cache the key set and never refetch it for an unknown ``kid`` must have fetched it
again meanwhile: Envoy's ``jwt_authn`` caches it for 10 min by default, and Istio's
control plane fetches it every 20 min and then pushes it to its proxies; 30 min covers
both with 10 min to spare for that push and one failed fetch."""
MAX_KEY_PUBLISH_DELAY: Final = 7 * 24 * 3600
"""Longest pre-publish window accepted (a week)."""
INTROSPECT_SCOPE: Final = "bearer-grpc:introspect"
"""Scope a client needs to introspect tokens over HTTP (RFC 7662)."""
ADMIN_AUDIENCE: Final = "bearer-grpc"
"""Audience of tokens meant for the TokenService itself; admin tokens must name it, so an
admin's token for another service cannot be replayed here."""
ADMIN_SECRETS_SCOPE: Final = "bearer-grpc:admin:secrets"
"""Scope an admin token also needs for the AdminService methods that hand out or replace
a credential: CreateClient, RotateClientSecret, CreateUser, SetUserPassword."""
ADMIN_KEYS_SCOPE: Final = "bearer-grpc:admin:keys"
"""Scope an admin token also needs to stage or withdraw signing keys (RotateKey,
WithdrawKey)."""
MAX_LEEWAY: Final = 300
"""Largest clock skew tolerance accepted (five minutes)."""
MAX_SECRET_OVERLAP: Final = 30 * 24 * 3600
"""Longest a rotated client secret may keep working beside its successor (30 days)."""
DEFAULT_AUDIT_RETENTION: Final = 365 * 24 * 3600
"""Seconds audit events are kept by default (one year)."""
MAX_AUDIT_RETENTION: Final = 10 * 365 * 24 * 3600
"""Longest audit retention accepted other than 0, which keeps events for ever."""


@dataclass(frozen=True)
class ServiceSettings:
    """How the token service issues and verifies.

    Attributes:
        issuer: ``iss`` of every token, and what verifiers must expect. Default
            ``"bearer-grpc"``; give each deployment its own (e.g. its URL).
        access_ttl: Access-token lifetime in seconds. Default 900 (15 min), at most one day.
        refresh_ttl: Refresh-token lifetime in seconds: how long a session may stay unused.
            Default 30 days, at most one year.
        session_ttl: Absolute session lifetime in seconds: a refresh family is refused this
            long after its login, however it was used, and the person logs in again.
            Default 90 days; at least ``refresh_ttl``, at most one year.
        leeway: Clock skew tolerated by verification, seconds. Default 30.
        key_algorithm: Algorithm of newly generated keys: ES256 (default), EdDSA or RS256.
        password_client_id: ``client_id`` claim of tokens obtained with the password grant
            (people log in through bearer_grpc itself). Default ``"bearer-grpc"``.
        sync_interval: Seconds between reads of the store for keys and revocations written
            by other processes. Default 1.
        password_workers: Password checks run at once; each holds 128 MiB for ~0.4 s.
            Default 2.
        password_queue: Password grants running or waiting before more are refused with
            RESOURCE_EXHAUSTED (a login flood cannot starve the rest). Default 32.
        password_per_peer: Of those, how many one peer (network address) may hold (at
            most the queue); the workers also take the peers' checks in turn. Default 4.
        watch_streams: WatchRevocations streams open at once; more are refused with
            RESOURCE_EXHAUSTED. Default 4096.
        watch_streams_per_peer: Of those, how many one peer may hold. Default 64.
        rotate_keys_every: Seconds after which the server stages a new signing key when
            the newest one is at least that old (0: never, the default; at least 60
            otherwise). Every replica checks; one of them stages the key, published
            ``key_publish_delay`` seconds before it signs.
        key_publish_delay: Seconds a scheduled key is published before it signs: at
            least the longest time any verifier caches the key set without refetching
            it. Default :data:`DEFAULT_KEY_PUBLISH_DELAY` (30 min); 0..a week.
        audit_retention: Seconds audit events are kept; older ones are pruned by the
            housekeeping of every replica. Default :data:`DEFAULT_AUDIT_RETENTION` (one
            year); 0 keeps them for ever.
    """

    issuer: str = "bearer-grpc"
    access_ttl: int = 900
    refresh_ttl: int = 30 * 24 * 3600
    session_ttl: int = 90 * 24 * 3600
    leeway: int = DEFAULT_LEEWAY
    key_algorithm: Algorithm = "ES256"
    password_client_id: str = "bearer-grpc"  # noqa: S105 (a client id)
    sync_interval: float = 1.0
    password_workers: int = 2
    password_queue: int = 32
    password_per_peer: int = 4
    watch_streams: int = 4096
    watch_streams_per_peer: int = 64
    rotate_keys_every: int = 0
    key_publish_delay: int = DEFAULT_KEY_PUBLISH_DELAY
    audit_retention: int = DEFAULT_AUDIT_RETENTION

    def __post_init__(self) -> None:
        if not 60 <= self.access_ttl <= MAX_ACCESS_TTL:
            raise ValueError(f"access token lifetime must be 60..{MAX_ACCESS_TTL} seconds")
        if not self.access_ttl <= self.refresh_ttl <= MAX_REFRESH_TTL:
            raise ValueError(
                f"refresh token lifetime must be access lifetime..{MAX_REFRESH_TTL} seconds"
            )
        if not self.refresh_ttl <= self.session_ttl <= MAX_SESSION_TTL:
            raise ValueError(
                f"session lifetime must be refresh token lifetime..{MAX_SESSION_TTL} seconds"
            )
        if not 0 <= self.leeway <= MAX_LEEWAY:
            raise ValueError(f"leeway must be 0..{MAX_LEEWAY} seconds")
        if not 0 <= self.audit_retention <= MAX_AUDIT_RETENTION:
            raise ValueError(f"audit retention must be 0..{MAX_AUDIT_RETENTION} seconds")
        if not self.issuer or len(self.issuer) > 256:
            raise ValueError("issuer must be 1..256 characters")
        if not 1 <= self.password_workers <= self.password_queue:
            raise ValueError("need 1 <= password workers <= password queue")
        if self.password_per_peer < 1:
            raise ValueError("need at least 1 password check per peer")
        if not 1 <= self.watch_streams_per_peer <= self.watch_streams:
            raise ValueError("need 1 <= watch streams per peer <= watch streams")
        if not 0.05 <= self.sync_interval <= 60:
            raise ValueError("sync interval must be 0.05..60 seconds")
        if self.rotate_keys_every and not (
            MIN_KEY_ROTATION <= self.rotate_keys_every <= MAX_KEY_ROTATION
        ):
            raise ValueError(
                f"key rotation interval must be {MIN_KEY_ROTATION}..{MAX_KEY_ROTATION} seconds"
            )
        if not 0 <= self.key_publish_delay <= MAX_KEY_PUBLISH_DELAY:
            raise ValueError(f"key publish delay must be 0..{MAX_KEY_PUBLISH_DELAY} seconds")

    @property
    def key_retention(self) -> int:
        """Seconds a key stays published after it stopped signing.

        Its last token's life (with the leeway), plus the pre-publish window, so that a
        replica or verifier that learned of its successor up to that window late still
        finds it.
        """
        return self.access_ttl + self.leeway + self.key_publish_delay

"""The deployment's client-secret hasher, whose key lives in the store."""

from __future__ import annotations

import base64

from bearer_grpc.core.secrets import SecretHasher, new_secret
from bearer_grpc.service.settings import SECRET_HASH_KEY_SETTING
from bearer_grpc.store import Store


def load_secret_hasher(store: Store) -> SecretHasher:
    """The deployment's client-secret hasher, creating its key on first use."""
    fresh = base64.b64encode(new_secret().encode()).decode()
    return SecretHasher(
        base64.b64decode(store.get_or_create_setting(SECRET_HASH_KEY_SETTING, fresh))
    )

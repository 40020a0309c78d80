"""The database router of read replicas: a read goes to a replica only inside a block that chose one.

Installed (`DATABASE_ROUTERS`) only when `DATABASE_REPLICA_URLS` is set.
Opt-in, never blanket: a read outside a `replica_reads` block (or a
`replica_tolerant` view), a read inside a transaction on the primary (every
movement, every `select_for_update`), and a read of the models of
authentication, sessions, tokens and second factors go to the primary, and
so does every write. Instances read from a replica are written to the
primary, and may be related to the primary's. Migrations run on the primary
only: replicas replay them.
"""

from __future__ import annotations

from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model

from wallet_project.replicas.routing import routed_alias

# Who may log in, with what, and what they may do: decided on the primary only, never from a replica's past.
PRIMARY_ONLY_APPS = frozenset(
    {"accounts", "auth", "sessions", "token_blacklist", "mfa", "django_otp", "otp_totp", "otp_static"}
)


class ReplicaRouter:
    def db_for_read(self, model: type[Model], **hints: Any) -> str:
        alias = routed_alias()
        if alias is None or model._meta.app_label in PRIMARY_ONLY_APPS or connections[DEFAULT_DB_ALIAS].in_atomic_block:
            # Explicit, not None: Django would otherwise send a read of an instance's relations to the
            # database that instance came from, a replica, outside any block that chose one.
            return DEFAULT_DB_ALIAS
        return alias

    def db_for_write(self, model: type[Model], **hints: Any) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool:
        # The replicas hold the primary's rows: an entry read from one may point at a wallet from the other.
        return True

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool:
        return db == DEFAULT_DB_ALIAS

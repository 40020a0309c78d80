"""Small database helpers shared by the apps."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import models

if TYPE_CHECKING:
    from django.db.backends.base.schema import BaseDatabaseSchemaEditor


class ClockTimestamp(models.Func):
    """PostgreSQL's `clock_timestamp()`: the time of the statement itself, not of the transaction's start.

    Ledger timestamps are taken after the row lock, so that history order and
    chain order agree (DESIGN.md). SQLite (development mode) has one writer at a
    time, so its current time serves.
    """

    template = "clock_timestamp()"
    output_field = models.DateTimeField()

    def as_sqlite(self, compiler, connection, **extra_context):  # type: ignore[no-untyped-def]
        return "STRFTIME('%%Y-%%m-%%d %%H:%%M:%%f', 'NOW')", []


@models.CharField.register_lookup
class OneOf(models.lookups.In):
    """`field__one_of=[...]`: `IN`, written on PostgreSQL as one array constant, `field::text = ANY('{…}'::text[])`.

    For CHECK constraints on the tables every movement writes. PostgreSQL reads
    a table's CHECK constraints back from their stored text at each INSERT and
    UPDATE; `IN ('A', 'B', …)` is stored as one node per value with its cast,
    and reading those was about a tenth of its CPU for a transfer
    (docs/PERFORMANCE.md, "Compact CHECK constraints"). One array constant is a
    third of the text. Anywhere else (SQLite) it is `IN`.
    """

    lookup_name = "one_of"

    def as_postgresql(self, compiler, connection):  # type: ignore[no-untyped-def]
        from wallet_project.pg_arrays import texts

        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"({lhs})::text = ANY(%s::text[])", [*lhs_params, texts(sorted(self.rhs))]


def replace_checks(
    schema_editor: BaseDatabaseSchemaEditor, model: type[models.Model], constraints: list[models.CheckConstraint]
) -> None:
    """Replace CHECK constraints of `model`'s table by these of the same names, without a scan under an exclusive lock.

    For a migration with `atomic = False` on a large table (the ledger): each is
    dropped and added `NOT VALID` in one statement (a brief exclusive lock, no
    scan), then validated, which reads every row while writes go on. PostgreSQL
    only; elsewhere the constraints stay as they were (the same rule, written as
    `IN`).
    """
    if schema_editor.connection.vendor != "postgresql":
        return
    table = schema_editor.quote_name(model._meta.db_table)
    for constraint in constraints:
        name = schema_editor.quote_name(constraint.name)
        check = constraint._get_check_sql(model, schema_editor)
        schema_editor.execute(
            f"ALTER TABLE {table} DROP CONSTRAINT {name}, ADD CONSTRAINT {name} CHECK ({check}) NOT VALID", params=None
        )
        schema_editor.execute(f"ALTER TABLE {table} VALIDATE CONSTRAINT {name}", params=None)

"""The console's operators and their sessions (docs/console.md): where they are kept.

A session is a random token the browser holds in an HttpOnly cookie; the database
keeps only its SHA-256, with the operator it belongs to, its CSRF token and when it
ends. Disabling an operator ends their sessions at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from batgate.store.database import Database
from batgate.store.schema import console_sessions, operators


class DuplicateOperatorError(Exception):
    """An operator of that name exists already."""


@dataclass(frozen=True, slots=True)
class Operator:
    id: int
    name: str
    password_hash: str
    disabled: bool
    created_at: float


@dataclass(frozen=True, slots=True)
class Session:
    operator: Operator
    csrf: str
    expires_at: float


_COLUMNS = (
    operators.c.id,
    operators.c.name,
    operators.c.password_hash,
    operators.c.disabled,
    operators.c.created_at,
)


class Operators:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, name: str, password_hash: str, now: float) -> Operator:
        row = {"name": name, "password_hash": password_hash, "disabled": False, "created_at": now}
        try:
            async with self.db.writer.begin() as conn:
                new_id = (
                    await conn.execute(operators.insert().values(row).returning(operators.c.id))
                ).scalar_one()
        except IntegrityError:
            raise DuplicateOperatorError(name) from None
        return Operator(new_id, name, password_hash, False, now)

    async def named(self, name: str) -> Operator | None:
        async with self.db.reader.connect() as conn:
            row = (
                await conn.execute(sa.select(*_COLUMNS).where(operators.c.name == name))
            ).one_or_none()
        return None if row is None else _operator(row)

    async def every(self) -> list[Operator]:
        async with self.db.reader.connect() as conn:
            rows = await conn.execute(sa.select(*_COLUMNS).order_by(operators.c.name))
            return [_operator(row) for row in rows]

    async def set_disabled(self, name: str, disabled: bool) -> bool:
        """Disable (ending their sessions) or enable; False for an unknown name."""
        async with self.db.writer.begin() as conn:
            found = (
                await conn.execute(
                    operators.update()
                    .where(operators.c.name == name)
                    .values(disabled=disabled)
                    .returning(operators.c.id)
                )
            ).scalar_one_or_none()
            if found is not None and disabled:
                await conn.execute(
                    console_sessions.delete().where(console_sessions.c.operator_id == found)
                )
        return found is not None

    # -- sessions ---------------------------------------------------------------------

    async def open_session(
        self, operator: Operator, token_hash: str, csrf: str, now: float, ends: float
    ) -> None:
        row = {
            "token_hash": token_hash,
            "operator_id": operator.id,
            "csrf": csrf,
            "created_at": now,
            "expires_at": ends,
        }
        async with self.db.writer.begin() as conn:
            await conn.execute(console_sessions.delete().where(console_sessions.c.expires_at < now))
            await conn.execute(console_sessions.insert().values(row))

    async def session(self, token_hash: str, now: float) -> Session | None:
        """The live session of that token, of an operator not disabled; or None."""
        query = (
            sa.select(*_COLUMNS, console_sessions.c.csrf, console_sessions.c.expires_at)
            .join(operators, operators.c.id == console_sessions.c.operator_id)
            .where(
                console_sessions.c.token_hash == token_hash,
                console_sessions.c.expires_at > now,
                operators.c.disabled.is_(False),
            )
        )
        async with self.db.reader.connect() as conn:
            row = (await conn.execute(query)).one_or_none()
        if row is None:
            return None
        return Session(_operator(row), row.csrf, row.expires_at)

    async def close_session(self, token_hash: str) -> None:
        async with self.db.writer.begin() as conn:
            await conn.execute(
                console_sessions.delete().where(console_sessions.c.token_hash == token_hash)
            )


def _operator(row: sa.Row) -> Operator:  # type: ignore[type-arg]
    return Operator(row.id, row.name, row.password_hash, bool(row.disabled), row.created_at)

"""`Idempotency-Key`: a request repeated with the same key gets the first answer and is
not acted on twice. Order placement and the payment service's POSTs use this one
mechanism (draft-ietf-httpapi-idempotency-key-header):

- Keys are per user, 1 to 255 visible ASCII characters, remembered `IDEMPOTENCY_KEY_TTL`
  seconds (24 h).
- Only a successful (2xx) answer is remembered: a refusal or a failure changed nothing,
  so its key is free again and the client may retry with it.
- The same key with another request (method, path or body): 422 `{"error": "Idempotency
  key reused with a different request"}`, the draft's answer, and nothing is done.
- A repeat that arrives while the first request is still being answered waits for that
  answer (a double click gets the same order twice, not two orders), at most `wait`
  seconds, then 409.
- A key whose request never answered (its process died) is free again after `LEASE`.

A service declares its table with the mixin (and a migration), keeps one
`IdempotencyKeys` in its state and wraps the action: `await keys.run(sessionmaker,
user_id=..., request=..., action=...)`. The action may store its answer inside its own
last transaction (`claim.record(session, answer)`), so that the change and the answer
commit together; otherwise it is stored right after the action returns.

This module is its table's repository: the key's SQL is here and nowhere else.
"""

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Annotated, Any

import asyncpg
from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import DateTime, Index, Integer, String, bindparam, delete, func, null, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from shared.db import DirectStatement, HotPath, affected_rows
from shared.errors import Conflict, Unprocessable
from shared.openapi import answers

HEADER = "Idempotency-Key"
# A request still unanswered after this long died with its process: its key is free.
LEASE = timedelta(minutes=10)
# How often a repeat looks whether the first request has answered.
POLL_SECONDS = 0.05


class IdempotencyKeyReused(Unprocessable):
    message = "Idempotency key reused with a different request"


class IdempotencyKeyInProgress(Conflict):
    message = "A request with this Idempotency-Key is still being processed"


class IdempotencyKeyMixin:
    """The table: one row per (user, key), its answer null while the request runs."""

    if TYPE_CHECKING:
        __tablename__: str  # the mapped class that uses the mixin names its table

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    # Method, path and body digest: the same key with another request is refused.
    fingerprint: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Index, ...]:
        # Forgetting expired keys reads them by age.
        return (Index(f"ix_{cls.__tablename__}_created_at", "created_at"),)


@dataclass(frozen=True)
class Answer:
    """What a request answered: sent now, and again to every repeat of its key."""

    status_code: int
    body: dict[str, Any]
    replayed: bool = False

    @classmethod
    def of(cls, model: BaseModel, status_code: int = 200) -> "Answer":
        return cls(status_code, model.model_dump(mode="json", by_alias=True))

    def response(self) -> JSONResponse:
        headers = {"Idempotent-Replayed": "true"} if self.replayed else None
        return JSONResponse(self.body, status_code=self.status_code, headers=headers)


@dataclass(frozen=True)
class KeyedRequest:
    """A request that carries an Idempotency-Key."""

    key: str
    fingerprint: str


def fingerprint(method: str, path: str, body: bytes) -> str:
    """The request's digest. A JSON body is read as data, so the same fields in another
    order or spacing are the same request."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = body
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).hexdigest()


@answers(
    (409, "A request with this Idempotency-Key is still being processed"),
    (422, "This Idempotency-Key was used with another request"),
)
async def keyed_request(
    request: Request,
    key: Annotated[
        str | None,
        Header(
            alias=HEADER,
            min_length=1,
            max_length=255,
            pattern=r"^[\x21-\x7e]+$",
            description="The same key from the same user within 24 h returns the first "
            "answer and does nothing twice.",
        ),
    ] = None,
) -> KeyedRequest | None:
    if key is None:
        return None
    return KeyedRequest(key, fingerprint(request.method, request.url.path, await request.body()))


# The route's optional `Idempotency-Key` (400 when it is not 1 to 255 visible characters).
KeyedRequestDep = Annotated[KeyedRequest | None, Depends(keyed_request)]


@dataclass
class Claim:
    """The key, held by the request being answered."""

    keys: "IdempotencyKeys"
    user_id: uuid.UUID
    key: str
    recorded: bool = field(default=False, init=False)

    async def record(self, session: AsyncSession, answer: Answer) -> None:
        """Stores the answer in `session`'s transaction: it commits with the change."""
        await session.execute(
            self.keys.record_statement,
            {
                "owner": self.user_id,
                "idempotency_key": self.key,
                "status_code": answer.status_code,
                "answer_body": answer.body,
            },
        )
        self.recorded = True

    async def record_with(self, connection: asyncpg.Connection, answer: Answer) -> None:
        """`record` in a transaction of asyncpg itself (shared.db.HotPath)."""
        statement = self.keys.record_direct
        await connection.execute(
            statement.sql,
            *statement.args(
                owner=self.user_id,
                idempotency_key=self.key,
                status_code=answer.status_code,
                answer_body=answer.body,
            ),
        )
        self.recorded = True


@dataclass(frozen=True)
class IdempotencyKeys:
    model: type[IdempotencyKeyMixin]
    ttl: timedelta
    # Seconds a repeat waits for the first request's answer before a 409.
    wait: float

    async def run(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        user_id: uuid.UUID,
        request: KeyedRequest | None,
        action: Callable[[Claim | None], Awaitable[Answer]],
        hot_path: HotPath | None = None,
    ) -> Answer:
        """The action's answer; with a key already answered, that answer (`replayed`).
        With `hot_path`, the key is claimed in one statement of asyncpg's (no ORM, no
        transaction around it)."""
        if request is None:
            return await action(None)
        claim_or_answer = await self._claim(sessionmaker, user_id, request, hot_path)
        if isinstance(claim_or_answer, Answer):
            return claim_or_answer
        claim = claim_or_answer
        try:
            answer = await action(claim)
        except BaseException:
            if not claim.recorded:
                await self._release(sessionmaker, claim)
            raise
        if claim.recorded:
            return answer
        if 200 <= answer.status_code < 300:
            async with sessionmaker() as session, session.begin():
                await claim.record(session, answer)
        else:
            await self._release(sessionmaker, claim)
        return answer

    async def answer(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        user_id: uuid.UUID,
        request: KeyedRequest | None,
        action: Callable[[], Awaitable[BaseModel]],
    ) -> Answer:
        """`run` for an action whose answer is a body with status 200."""

        async def act(claim: Claim | None) -> Answer:
            return Answer.of(await action())

        return await self.run(sessionmaker, user_id=user_id, request=request, action=act)

    async def _claim(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        user_id: uuid.UUID,
        request: KeyedRequest,
        hot_path: HotPath | None,
    ) -> Claim | Answer:
        deadline = time.monotonic() + self.wait
        while True:
            if hot_path is not None and await self._take_with(hot_path, user_id, request):
                return Claim(self, user_id, request.key)
            async with sessionmaker() as session, session.begin():
                if hot_path is None and await self._take(session, user_id, request):
                    return Claim(self, user_id, request.key)
                held = await session.get(self.model, (user_id, request.key), populate_existing=True)
            if held is not None:
                if held.fingerprint != request.fingerprint:
                    raise IdempotencyKeyReused()
                if held.response_status is not None and held.response_body is not None:
                    return Answer(held.response_status, held.response_body, replayed=True)
                if time.monotonic() > deadline:
                    raise IdempotencyKeyInProgress()
            # Held by a request still running (or it just ended): look again shortly.
            await asyncio.sleep(POLL_SECONDS)

    async def _take(self, session: AsyncSession, user_id: uuid.UUID, request: KeyedRequest) -> bool:
        """Takes the key unless another request holds it; an expired key, or one whose
        request died unanswered, is taken over. Of two concurrent claims exactly one wins."""
        taken = await session.scalar(self.take_statement, self._take_values(user_id, request))
        return taken is not None

    async def _take_with(
        self, hot_path: HotPath, user_id: uuid.UUID, request: KeyedRequest
    ) -> bool:
        """`_take` as one statement of asyncpg's, committed on its own."""
        statement = self.take_direct
        taken = await hot_path.fetchrow(
            statement.sql, *statement.args(**self._take_values(user_id, request))
        )
        return taken is not None

    def _take_values(self, user_id: uuid.UUID, request: KeyedRequest) -> dict[str, Any]:
        now = datetime.now(UTC)
        return {
            "owner": user_id,
            "idempotency_key": request.key,
            "request_fingerprint": request.fingerprint,
            "claimed_at": now,
            "expired_before": now - self.ttl,
            "lease_ended_before": now - LEASE,
        }

    # The statements every keyed request runs, built once for the model (their parameters
    # are not named as columns: SQLAlchemy keeps those names for INSERT and UPDATE).
    @cached_property
    def take_statement(self) -> Any:
        model = self.model
        values: dict[str, Any] = {
            "fingerprint": bindparam("request_fingerprint"),
            "response_status": null(),
            "response_body": null(),
            "created_at": bindparam("claimed_at"),
        }
        return (
            insert(model)
            .values(user_id=bindparam("owner"), key=bindparam("idempotency_key"), **values)
            .on_conflict_do_update(
                index_elements=[model.user_id, model.key],
                set_=values,
                where=(model.created_at < bindparam("expired_before"))
                | (
                    model.response_status.is_(None)
                    & (model.created_at < bindparam("lease_ended_before"))
                ),
            )
            .returning(model.key)
        )

    @cached_property
    def record_statement(self) -> Any:
        model = self.model
        return (
            update(model)
            .where(model.user_id == bindparam("owner"), model.key == bindparam("idempotency_key"))
            .values(
                response_status=bindparam("status_code"), response_body=bindparam("answer_body")
            )
        )

    @cached_property
    def take_direct(self) -> DirectStatement:
        return DirectStatement.of(self.take_statement)

    @cached_property
    def record_direct(self) -> DirectStatement:
        return DirectStatement.of(self.record_statement)

    async def _release(self, sessionmaker: async_sessionmaker[AsyncSession], claim: Claim) -> None:
        model = self.model
        async with sessionmaker() as session, session.begin():
            await session.execute(
                delete(model).where(model.user_id == claim.user_id, model.key == claim.key)
            )

    async def forget_expired(self, session: AsyncSession) -> int:
        """Deletes the keys older than their time to live (a worker's job)."""
        model = self.model
        result = await session.execute(
            delete(model).where(model.created_at < datetime.now(UTC) - self.ttl)
        )
        return affected_rows(result)

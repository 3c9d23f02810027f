"""`Idempotency-Key`: a request repeated with the same key gets the first answer, and
is not acted on twice. Keys are per user and kept 24 hours. Answers of 5xx are not
kept (nothing was decided; the client may try again with the same key)."""

import hashlib
import uuid
from collections.abc import Awaitable, Callable

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import delete, select

from payment_service import repository
from payment_service.models import IdempotencyRecord
from shared.errors import AppError, BadRequest, Conflict

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255


def _answer(model: BaseModel) -> tuple[int, dict]:
    return 200, model.model_dump(mode="json", by_alias=True)


async def idempotent(
    request: Request, user_id: uuid.UUID, action: Callable[[], Awaitable[BaseModel]]
) -> JSONResponse:
    key = request.headers.get(HEADER)
    if key is None:
        status, body = _answer(await action())
        return JSONResponse(body, status_code=status)
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise BadRequest(f"{HEADER} must be 1 to {MAX_KEY_LENGTH} characters")

    raw = await request.body()
    fingerprint = hashlib.sha256(
        request.method.encode() + b" " + request.url.path.encode() + b"\n" + raw
    ).hexdigest()
    sessionmaker = request.app.state.sessionmaker
    async with sessionmaker() as session, session.begin():
        claimed = await repository.claim_idempotency_key(session, user_id, key, fingerprint)
        record = None if claimed else await session.get(IdempotencyRecord, (user_id, key))
    if record is not None:
        if record.fingerprint != fingerprint:
            raise BadRequest(f"{HEADER} was already used with another request")
        if record.status_code is None:
            raise Conflict(f"A request with this {HEADER} is still in progress")
        return JSONResponse(
            record.response_body,
            status_code=record.status_code,
            headers={"Idempotent-Replayed": "true"},
        )

    try:
        status, body = _answer(await action())
    except AppError as exc:
        if exc.status_code >= 500:
            await _release(sessionmaker, user_id, key)
            raise
        status, body = exc.status_code, exc.body()
    except BaseException:
        await _release(sessionmaker, user_id, key)
        raise
    async with sessionmaker() as session, session.begin():
        record = await session.scalar(
            select(IdempotencyRecord)
            .where(IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key)
            .with_for_update()
        )
        if record is not None:
            record.status_code = status
            record.response_body = body
    return JSONResponse(body, status_code=status)


async def _release(sessionmaker, user_id: uuid.UUID, key: str) -> None:
    async with sessionmaker() as session, session.begin():
        await session.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key
            )
        )

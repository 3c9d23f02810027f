"""HTTP caching (RFC 9110 §8.8.3, §13.1.2; RFC 9111 §5.2), what a service that answers
cacheable reads and the gateway that keeps them both need: a strong `ETag` made from the
body's bytes, whether an `If-None-Match` matches it, and the directives of a
`Cache-Control` header.

`cacheable_json` is a service's answer: public (`Cache-Control: public, max-age=N`, shared
caches such as the gateway's may keep it) for a request without `Authorization`, private
(`private, no-store`) for one with it, a `304` without a body when the client already has
these bytes.
"""

import hashlib

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

PRIVATE = "private, no-store"


def strong_etag(body: bytes) -> str:
    """The same bytes, the same tag; other bytes, another (a hash of the body)."""
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def _opaque(tag: str) -> str:
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag


def etag_matches(if_none_match: str | None, etag: str | None) -> bool:
    """Whether `If-None-Match` names this tag (weak comparison, as RFC 9110 §13.1.2 asks
    for this header; `*` matches any current answer)."""
    if not if_none_match or not etag:
        return False
    if if_none_match.strip() == "*":
        return True
    current = _opaque(etag)
    return any(_opaque(tag) == current for tag in if_none_match.split(","))


def cache_directives(value: str | None) -> dict[str, str | None]:
    """`public, max-age=5` -> {"public": None, "max-age": "5"}; names lower-cased, quotes
    around values removed."""
    directives: dict[str, str | None] = {}
    for item in (value or "").split(","):
        name, sep, argument = item.strip().partition("=")
        if name:
            directives[name.lower()] = argument.strip().strip('"') if sep else None
    return directives


def seconds(value: str | None) -> int | None:
    """A delta-seconds argument (`max-age=5`), None when absent or not a number."""
    return int(value) if value is not None and value.isdigit() else None


def cacheable_json(request: Request, content: BaseModel, *, max_age: int) -> Response:
    """`content` as JSON (camelCase aliases, as FastAPI would), with its `ETag`; public
    for `max_age` seconds unless the request carries credentials; `304` when the client's
    `If-None-Match` names these bytes."""
    body = content.model_dump_json(by_alias=True).encode()
    etag = strong_etag(body)
    anonymous = "authorization" not in request.headers
    headers = {
        "ETag": etag,
        "Cache-Control": f"public, max-age={max_age}" if anonymous else PRIVATE,
        # What a cache may hand out depends on who asks (an admin sees inactive products).
        "Vary": "Authorization",
    }
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)

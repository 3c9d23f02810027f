"""What every page module of the console shares: the notice a page shows after a form
(`?notice=`), the redirect to it, the query of a list page, the status of an API refusal."""

from urllib.parse import urlencode

from fastapi import Request
from starlette.responses import RedirectResponse

from admin_console.exceptions import ApiError

NOTICES = {
    "status": "The order's status is changed.",
    "refunded": "The refund is recorded.",
    "created": "The product is created.",
    "saved": "The product is saved.",
    "restocked": "The stock is changed.",
    "deactivated": "The product is deactivated: customers no longer see it.",
    "reactivated": "The product is active again.",
    "user": "The user is changed.",
}


def see(path: str, notice: str | None = None, **query: str) -> RedirectResponse:
    """After a form: to the page that shows the result (303: a reload does not resend)."""
    params = {**query, **({"notice": notice} if notice else {})}
    return RedirectResponse(path + ("?" + urlencode(params) if params else ""), status_code=303)


def notice(request: Request) -> str | None:
    return NOTICES.get(request.query_params.get("notice", ""))


def query(request: Request) -> dict[str, str]:
    return dict(request.query_params)


def refused_status(error: ApiError) -> int:
    return error.status if 400 <= error.status < 600 else 502

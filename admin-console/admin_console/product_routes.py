"""The console's catalogue pages and their forms: create, edit, restock, deactivate and
reactivate a product. See routes.py for how pages and forms are made."""

import re
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from starlette.responses import Response

from admin_console import views
from admin_console.dependencies import Api
from admin_console.exceptions import ApiError
from admin_console.navigation import notice, query, refused_status, see
from admin_console.session import (
    BASE,
    verify_csrf,
)
from admin_console.state import console_settings
from admin_console.templating import render

router = APIRouter(prefix=BASE)
forms = APIRouter(prefix=BASE, dependencies=[Depends(verify_csrf)])


# --- Products ---------------------------------------------------------------------------


@router.get("/products")
async def products(request: Request, api: Api) -> Response:
    settings = console_settings(request)
    context = await views.product_list(api, query(request), settings.low_stock_threshold)
    return render(
        request,
        "products.html",
        {
            "section": "products",
            "query": query(request),
            "links": views.page_links(context["page"], context["pages"]),
            "low_stock": settings.low_stock_threshold,
            **context,
        },
    )


@router.get("/products/new")
async def new_product(request: Request) -> Response:
    return render(request, "product_form.html", {"section": "products", "form": {}})


@router.get("/products/image-preview")
async def image_preview(request: Request, imageUrl: str = "") -> Response:
    url = imageUrl.strip()
    return render(
        request,
        "image_preview.html",
        {"url": url if views.is_web_image(url) else None, "given": url},
    )


async def _product_form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {name: str(form.get(name, ""))[:10_000] for name in views.PRODUCT_FIELDS}


@forms.post("/products/new")
async def create_product(request: Request, api: Api) -> Response:
    form = await _product_form(request)
    try:
        body = await api.post("/api/products", views.product_body(form, creating=True))
    except ApiError as error:
        return render(
            request,
            "product_form.html",
            {
                "section": "products",
                "form": form,
                "error": error.message,
                "field_errors": error.field_errors(),
            },
            status_code=refused_status(error),
        )
    return see(f"{BASE}/products/{body['product']['id']}", "created")


async def _product_page(
    request: Request, api: Api, product_id: uuid.UUID, **extra: Any
) -> Response:
    product = (await api.get(f"/api/products/{product_id}"))["product"]
    status_code = extra.pop("status_code", 200)
    form = extra.pop("form", None) or {
        name: "" if product.get(name) is None else str(product[name])
        for name in views.PRODUCT_FIELDS
    }
    return render(
        request,
        "product_form.html",
        {
            "section": "products",
            "product": product,
            "form": form,
            "notice": notice(request),
            **extra,
        },
        status_code=status_code,
    )


@router.get("/products/{product_id}")
async def product(request: Request, api: Api, product_id: uuid.UUID) -> Response:
    return await _product_page(request, api, product_id)


@forms.post("/products/{product_id}")
async def save_product(request: Request, api: Api, product_id: uuid.UUID) -> Response:
    form = await _product_form(request)
    try:
        await api.put(f"/api/products/{product_id}", views.product_body(form, creating=False))
    except ApiError as error:
        return await _product_page(
            request,
            api,
            product_id,
            form=form,
            error=error.message,
            field_errors=error.field_errors(),
            status_code=refused_status(error),
        )
    return see(f"{BASE}/products/{product_id}", "saved")


@forms.post("/products/{product_id}/stock")
async def restock(
    request: Request,
    api: Api,
    product_id: uuid.UUID,
    delta: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    # A whole number goes as one; anything else as typed, for the API to name the problem.
    value: Any = int(delta) if re.fullmatch(r"\s*-?\d{1,12}\s*", delta) else delta
    try:
        await api.patch(f"/api/products/{product_id}/stock", {"delta": value})
    except ApiError as error:
        return await _product_page(
            request,
            api,
            product_id,
            stock_error=error.field_errors().get("delta") or error.message,
            delta=delta,
            status_code=refused_status(error),
        )
    return see(f"{BASE}/products/{product_id}", "restocked")


@forms.post("/products/{product_id}/deactivate")
async def deactivate_product(request: Request, api: Api, product_id: uuid.UUID) -> Response:
    await api.delete(f"/api/products/{product_id}")
    return see(f"{BASE}/products/{product_id}", "deactivated")


@forms.post("/products/{product_id}/reactivate")
async def reactivate_product(request: Request, api: Api, product_id: uuid.UUID) -> Response:
    await api.put(f"/api/products/{product_id}", {"isActive": True})
    return see(f"{BASE}/products/{product_id}", "reactivated")

"""A service's document documents every error a route may answer: what its dependencies
refuse (however deep), what its service layer raises, 400 for bad input, 503; never
FastAPI's 422 unless a route says it answers one."""

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI

from shared.openapi import answers, errors, install_openapi


@answers((401, "No token"))
async def caller() -> str:
    return "someone"


@answers(404)
async def thing(thing_id: str, who: Annotated[str, Depends(caller)]) -> str:
    return thing_id


def document() -> dict:
    router = APIRouter(prefix="/api")

    @router.get("/things/{thing_id}")
    async def read(found: Annotated[str, Depends(thing)]) -> dict:
        return {}

    @router.post("/things", responses=errors((409, "Taken"), (422, "Key reused")))
    async def create(name: str) -> dict:
        return {}

    @router.get("/plain")
    async def plain() -> dict:
        return {}

    app = FastAPI()
    app.include_router(router)
    install_openapi(app)
    return app.openapi()


def test_a_dependency_s_answers_reach_every_route_that_depends_on_it():
    read = document()["paths"]["/api/things/{thing_id}"]["get"]["responses"]
    assert sorted(read) == ["200", "400", "401", "404", "503"]
    assert read["401"]["description"] == "No token"
    assert read["404"]["description"] == "Not Found"
    error = {"$ref": "#/components/schemas/ErrorResponse"}
    for code in ("400", "401", "404", "503"):
        assert read[code]["content"]["application/json"]["schema"] == error, code


def test_fastapi_s_422_goes_unless_the_route_declares_one():
    doc = document()
    create = doc["paths"]["/api/things"]["post"]["responses"]
    assert sorted(create) == ["200", "400", "409", "422", "503"]
    assert create["422"]["description"] == "Key reused"
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    assert doc["components"]["schemas"]["ErrorResponse"]["required"] == ["error"]


def test_a_route_without_input_has_no_400():
    assert sorted(document()["paths"]["/api/plain"]["get"]["responses"]) == ["200", "503"]


def test_free_text_is_documented_without_nul_as_the_text_guard_refuses_it():
    (name,) = document()["paths"]["/api/things"]["post"]["parameters"]
    assert name["schema"]["pattern"] == "^[^\\u0000]*$"

"""docs/api/ecommerce.postman_collection.json run against the running stack, request by
request in its order, as Postman's runner would: variables substituted, and each request's
test script obeyed (its expected status, the fields it checks, the token and ids it
captures for the requests after it). Also: the collection and docs/api/ecommerce.http
cover every route of the gateway's API docs, and the .http file's references resolve.

The scripts are JavaScript for Postman; this runner understands the few statements they
use (below) and refuses any other, so a script it cannot obey fails the test instead of
being skipped."""

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from scripts.services import ROOT
from tests.conftest import ADMIN

COLLECTION = ROOT / "docs" / "api" / "ecommerce.postman_collection.json"
HTTP_FILE = ROOT / "docs" / "api" / "ecommerce.http"

PATH = r"((?:\.\w+|\[\d+\])*)"
STATUS = re.compile(
    r'^pm\.test\("[^"]*", function \(\) \{ pm\.response\.to\.have\.status\((\d+)\); \}\);$'
)
BODY = "var body = pm.response.json();"
EXPECT = re.compile(
    r'^pm\.test\("[^"]*", function \(\) \{ pm\.expect\(body' + PATH + r"\)\.to\.eql\((.+)\); \}\);$"
)
CAPTURE = re.compile(r'^pm\.collectionVariables\.set\("(\w+)", body' + PATH + r"\);$")
VARIABLE_VALUE = re.compile(r'^pm\.collectionVariables\.get\("(\w+)"\)$')
PLACEHOLDER = re.compile(r"\{\{(\$?\w+)\}\}")
HTTP_REQUEST_LINE = re.compile(r"^(GET|POST|PUT|PATCH|DELETE) \{\{baseUrl\}\}(\S+)$", re.MULTILINE)


@dataclass
class RequestChecks:
    status: int
    expects: list[tuple[str, str]] = field(default_factory=list)  # (path, JS value)
    captures: list[tuple[str, str]] = field(default_factory=list)  # (variable, path)


def parse_script(lines: list[str]) -> RequestChecks:
    script: RequestChecks | None = None
    for line in lines:
        if match := STATUS.match(line):
            script = RequestChecks(int(match[1]))
        elif line == BODY:
            continue
        elif (match := EXPECT.match(line)) and script is not None:
            script.expects.append((match[1], match[2]))
        elif (match := CAPTURE.match(line)) and script is not None:
            script.captures.append((match[1], match[2]))
        else:
            pytest.fail(f"the runner does not understand this test script line: {line}")
    assert script is not None, "every request's test checks its status first"
    return script


def walk(body: Any, path: str) -> Any:
    for name, index in re.findall(r"\.(\w+)|\[(\d+)\]", path):
        body = body[name] if name else body[int(index)]
    return body


def substitute(text: str, variables: dict[str, str]) -> str:
    def value(match: re.Match) -> str:
        name = match[1]
        if name == "$guid":
            return str(uuid.uuid4())
        assert variables.get(name), f"{{{{{name}}}}} is not set when it is used"
        return variables[name]

    return PLACEHOLDER.sub(value, text)


def collection_requests(collection: dict) -> list[tuple[str, dict, RequestChecks]]:
    found = []
    for folder in collection["item"]:
        for item in folder["item"]:
            [event] = [e for e in item["event"] if e["listen"] == "test"]
            found.append((item["name"], item["request"], parse_script(event["script"]["exec"])))
    return found


def route_of(method: str, url: str, templates: set[tuple[str, str]]) -> tuple[str, str] | None:
    """The documented route (method, template) a request's URL is for: a `{{variable}}`
    segment stands for a path parameter, any other segment must be the template's."""
    segments = url.removeprefix("{{baseUrl}}").split("?")[0].split("/")
    for template_method, template in templates:
        parts = template.split("/")
        if template_method != method or len(parts) != len(segments):
            continue
        if all(
            (part.startswith("{") and PLACEHOLDER.fullmatch(segment)) or part == segment
            for part, segment in zip(parts, segments, strict=True)
        ):
            return template_method, template
    return None


def documented_routes(gateway: httpx.Client) -> set[tuple[str, str]]:
    document = gateway.get("/openapi.json").json()
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item}


@pytest.mark.e2e
def test_the_collection_runs_in_order_against_the_stack(stack, gateway, fake_stripe):
    collection = json.loads(COLLECTION.read_text())
    variables = {variable["key"]: variable["value"] for variable in collection["variable"]}
    variables.update(
        baseUrl=stack.gateway,
        adminEmail=ADMIN["email"],
        adminPassword=ADMIN["password"],
        mpesaCallbackSecret=stack.env["MPESA_CALLBACK_SECRET"],
    )
    requests = collection_requests(collection)
    with httpx.Client(timeout=30) as client:
        for name, request, script in requests:
            headers = {h["key"]: substitute(h["value"], variables) for h in request["header"]}
            body = request.get("body", {}).get("raw")
            response = client.request(
                request["method"],
                substitute(request["url"]["raw"], variables),
                headers=headers,
                content=substitute(body, variables).encode() if body is not None else None,
            )
            assert response.status_code == script.status, (name, response.text)
            answer = response.json()
            for path, expected in script.expects:
                named = VARIABLE_VALUE.match(expected)
                wanted = variables[named[1]] if named else json.loads(expected)
                assert walk(answer, path) == wanted, (name, path)
            for variable, path in script.captures:
                variables[variable] = str(walk(answer, path))

    # What the requests did, seen by the shop: the admin cancelled the third order, the
    # customer the second; the first is being paid by M-Pesa.
    customer = {"Authorization": f"Bearer {variables['customerToken']}"}
    orders = gateway.get("/api/orders", headers=customer).json()["orders"]
    statuses = {order["id"]: order["status"] for order in orders}
    assert statuses[variables["secondOrderId"]] == "cancelled"
    assert statuses[variables["thirdOrderId"]] == "cancelled"
    assert statuses[variables["orderId"]] in ("pending", "paid")
    # The password was changed last: the new one logs in.
    login = gateway.post(
        "/api/auth/login",
        json={"email": variables["customerEmail"], "password": variables["newPassword"]},
    )
    assert login.status_code == 200

    routes = documented_routes(gateway)
    exercised = {
        route_of(request["method"], request["url"]["raw"], routes) for _, request, _ in requests
    }
    assert routes - exercised == set(), "documented routes the collection does not call"
    # Every request but the gateway's /health is a documented route.
    assert [
        r["url"]["raw"]
        for _, r, _ in requests
        if not route_of(r["method"], r["url"]["raw"], routes)
    ] == ["{{baseUrl}}/health"]


def test_the_http_file_makes_the_collections_requests_and_its_references_resolve():
    collection = json.loads(COLLECTION.read_text())
    text = HTTP_FILE.read_text()
    in_collection = [
        (request["method"], request["url"]["raw"].removeprefix("{{baseUrl}}"))
        for _, request, _ in collection_requests(collection)
    ]
    assert HTTP_REQUEST_LINE.findall(text) == in_collection

    # Requests are named before they are referenced; file variables are all defined.
    names = re.findall(r"^# @name (\w+)$", text, flags=re.MULTILINE)
    assert len(names) == len(set(names)) == len(in_collection)
    defined = set(re.findall(r"^@(\w+) = ", text, flags=re.MULTILINE))
    for reference in re.findall(r"\{\{(\w+)\.response\.body\.\$[^}]*\}\}", text):
        assert reference in names, reference
    for variable in PLACEHOLDER.findall(text):
        assert variable in defined or variable == "$guid", variable
    # Protected requests send the captured tokens.
    assert "@customerToken = {{login.response.body.$.token}}" in text
    assert text.count("Authorization: Bearer {{adminToken}}") == sum(
        1
        for _, request, _ in collection_requests(collection)
        for header in request["header"]
        if header["value"] == "Bearer {{adminToken}}"
    )

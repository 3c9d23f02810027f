"""A fake of the part of Stripe's API the payment service calls, for the end-to-end
tests and `make fuzz` (nothing here reaches Stripe): it creates PaymentIntents, keeps
them, lists and returns them."""

import json
import threading
import time
import uuid
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class FakeStripe(ThreadingHTTPServer):
    """The part of Stripe's API the payment service calls (it has no network here): it
    creates PaymentIntents, keeps them, lists and returns them. A test says when the
    customer paid one (`succeed`), as Stripe would then report it."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _FakeStripeHandler)
        self.intents: dict[str, dict] = {}
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def succeed(self, intent_id: str) -> dict:
        with self.lock:
            intent = self.intents[intent_id]
            intent.update(
                status="succeeded",
                amount_received=intent["amount"],
                latest_charge=f"ch_{uuid.uuid4().hex[:12]}",
            )
            return dict(intent)

    def create_intent(self, form: dict[str, list[str]]) -> dict:
        intent_id = f"pi_{uuid.uuid4().hex[:16]}"
        intent = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": int(form["amount"][0]),
            "amount_received": 0,
            "currency": form["currency"][0],
            "client_secret": f"{intent_id}_secret_e2e",
            "status": "requires_payment_method",
            "created": int(time.time()),
            "latest_charge": None,
            "metadata": {
                key[len("metadata[") : -1]: values[0]
                for key, values in form.items()
                if key.startswith("metadata[")
            },
        }
        with self.lock:
            self.intents[intent_id] = intent
        return intent

    def list_intents(self, query: dict[str, list[str]]) -> dict:
        gte = int(query.get("created[gte]", ["0"])[0])
        lt = int(query.get("created[lt]", [str(2**40)])[0])
        limit = int(query.get("limit", ["10"])[0])
        after = query.get("starting_after", [""])[0]
        with self.lock:
            selected = sorted(
                (i for i in self.intents.values() if gte <= i["created"] < lt and i["id"] > after),
                key=lambda i: i["id"],
            )
        return {
            "object": "list",
            "url": "/v1/payment_intents",
            "data": selected[:limit],
            "has_more": len(selected) > limit,
        }


class _FakeStripeHandler(BaseHTTPRequestHandler):
    server: FakeStripe

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        form = parse_qs(self.rfile.read(length).decode())
        if urlparse(self.path).path == "/v1/payment_intents":
            self._answer(200, self.server.create_intent(form))
        else:
            self._answer(404, {"error": {"type": "invalid_request_error"}})

    def do_GET(self):
        url = urlparse(self.path)
        if url.path == "/v1/payment_intents":
            self._answer(200, self.server.list_intents(parse_qs(url.query)))
            return
        intent = self.server.intents.get(url.path.removeprefix("/v1/payment_intents/"))
        if intent is None:
            self._answer(404, {"error": {"type": "invalid_request_error"}})
        else:
            self._answer(200, intent)

    def _answer(self, status: int, body: dict) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@contextmanager
def running_fake_stripe():
    server = FakeStripe()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()

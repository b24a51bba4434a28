"""A real HTTP receiver on loopback that keeps every webhook request and checks its signature with
the independent ``standardwebhooks`` package at the moment it arrives (its clock is the test's)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int
    verified_with: list[str] = field(default_factory=list)  # the secrets whose check passed

    @property
    def message_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def payload(self) -> dict:
        return json.loads(self.body)


class Receiver:
    """``with Receiver() as receiver:``; ``receiver.url``, ``receiver.requests``; set ``statuses``
    (answered in turn, then ``default_status``) and ``secrets`` (tried on each request)."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.statuses: list[int] = []
        self.default_status = 200
        self.secrets: list[str] = []
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server interface
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {key.lower(): value for key, value in self.headers.items()}
                with owner.lock:
                    status = owner.statuses.pop(0) if owner.statuses else owner.default_status
                    verified = []
                    for secret in owner.secrets:
                        try:
                            Webhook(secret).verify(body, headers)
                        except WebhookVerificationError:
                            continue
                        verified.append(secret)
                    owner.requests.append(Received(self.path, headers, body, status, verified))
                answer = json.dumps({"received": status < 300}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/neighbourly"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def of_type(self, event: str) -> list[Received]:
        return [request for request in self.requests if request.payload["type"] == event]

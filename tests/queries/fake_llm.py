"""A small OpenAI-compatible chat-completions server for tests (the real wire protocol, no model).

It answers each numbered product line of the prompt with queries made from the product's words.
Knobs: ``fail_after`` (HTTP 500 for every request after that many), ``drop_marker`` (products whose
text contains it are left out of answers), ``status`` (answer every request with that HTTP status).
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LINE_RE = re.compile(r"^(\d+)\. (.*)$", re.MULTILINE)


class FakeLLM:
    def __init__(self, *, fail_after: int | None = None, drop_marker: str | None = None, status: int | None = None) -> None:
        self.fail_after = fail_after
        self.drop_marker = drop_marker
        self.status = status
        self.requests = 0
        self.products_seen: list[str] = []
        self.authorization: set[str] = set()
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests += 1
                    n = server.requests
                    server.authorization.add(self.headers.get("Authorization", ""))
                if self.path != "/v1/chat/completions":
                    return self._reply(404, {"error": {"message": "not found"}})
                if server.status is not None:
                    return self._reply(server.status, {"error": {"message": "refused"}})
                if server.fail_after is not None and n > server.fail_after:
                    return self._reply(500, {"error": {"message": "overloaded"}})
                prompt = body["messages"][-1]["content"]
                answers = []
                for number, text in LINE_RE.findall(prompt.split("Products:", 1)[-1]):
                    with server.lock:
                        server.products_seen.append(text)
                    if server.drop_marker and server.drop_marker in text:
                        continue
                    words = text.lower().split()
                    answers.append({"product": int(number), "queries": [" ".join(words[-2:]), " ".join(words[:2]) + " deal"]})
                content = "Here you go:\n```json\n" + json.dumps({"queries": answers}) + "\n```"
                self._reply(200, {"id": f"chatcmpl-{n}", "object": "chat.completion", "model": body["model"],
                                  "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                               "finish_reason": "stop"}]})

            def _reply(self, status, payload):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeLLM:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

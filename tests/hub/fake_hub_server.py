"""A tiny stand-in for the Hugging Face Hub on 127.0.0.1, recording what is uploaded.

It implements only the endpoints ``huggingface_hub`` calls for ``create_repo`` and
``create_commit`` / ``upload_file`` / ``upload_folder`` with small files:

* ``POST /api/repos/create``                        -> ``{"url": ...}`` (409 when it exists)
* ``POST /api/validate-yaml``                       -> no errors (README.md metadata check)
* ``POST /api/{type}s/{ns}/{name}/preupload/{rev}`` -> every file uploads as a "regular" blob
* ``POST /api/{type}s/{ns}/{name}/commit/{rev}``    -> stores the NDJSON commit's files

Use it with ``HF_ENDPOINT`` (or ``HfApi(endpoint=server.url)``)::

    with FakeHubServer() as hub:
        HfApi(endpoint=hub.url, token="hf_x").create_repo("me/data", repo_type="dataset")
        hub.repos["datasets/me/data"]["files"]  # {path: bytes}
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeHubServer:
    """Threaded HTTP server; ``repos`` and ``requests`` hold what clients sent."""

    def __init__(self) -> None:
        self.repos: dict[str, dict[str, Any]] = {}
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):  # noqa: N802 - http.server API
                server._record(self, b"")
                self._reply(404, {"error": "not implemented in the fake hub"})

            def do_POST(self):  # noqa: N802 - http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                server._record(self, body)
                status, payload = server._handle(self.path.split("?", 1)[0], body, self.headers)
                self._reply(status, payload)

            def _reply(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if status >= 400:
                    self.send_header("X-Error-Message", payload.get("error", ""))
                self.end_headers()
                self.wfile.write(data)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeHubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _record(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        with self._lock:
            self.requests.append({"method": handler.command, "path": handler.path,
                                  "authorization": handler.headers.get("Authorization"), "body": body})

    def _handle(self, path: str, body: bytes, headers) -> tuple[int, dict]:
        if not (headers.get("Authorization") or "").startswith("Bearer "):
            return 401, {"error": "Invalid credentials in Authorization header"}
        if path == "/api/repos/create":
            req = json.loads(body)
            repo_type = req.get("type") or "model"
            name = f"{req['organization']}/{req['name']}" if req.get("organization") else req["name"]
            key = f"{repo_type}s/{name}"
            with self._lock:
                if key in self.repos:
                    return 409, {"error": "You already created this dataset repo", "url": f"{self.url}/{key}"}
                self.repos[key] = {"type": repo_type, "private": req.get("visibility") == "private",
                                   "request": req, "files": {}, "commits": []}
            return 200, {"url": f"{self.url}/{key}", "name": name}
        if path == "/api/validate-yaml":
            return 200, {"errors": [], "warnings": []}
        parts = path.strip("/").split("/")
        # api / {type}s / ns / name / (preupload|commit) / revision
        if len(parts) >= 6 and parts[0] == "api" and parts[4] in ("preupload", "commit"):
            key = "/".join(parts[1:4])
            if key not in self.repos:
                return 404, {"error": "Repository not found"}
            if parts[4] == "preupload":
                files = json.loads(body)["files"]
                return 200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                       for f in files]}
            return self._commit(key, body)
        return 404, {"error": f"unknown endpoint {path}"}

    def _commit(self, key: str, body: bytes) -> tuple[int, dict]:
        header: dict[str, Any] = {}
        files: dict[str, bytes] = {}
        for line in body.splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            if item["key"] == "header":
                header = item["value"]
            elif item["key"] == "file":
                value = item["value"]
                content = value["content"]
                files[value["path"]] = (base64.b64decode(content) if value.get("encoding") == "base64"
                                        else content.encode())
            else:
                return 400, {"error": f"the fake hub does not support '{item['key']}' operations"}
        oid = hashlib.sha1(body).hexdigest()
        with self._lock:
            repo = self.repos[key]
            repo["files"].update(files)
            repo["commits"].append({"oid": oid, "summary": header.get("summary"), "paths": sorted(files)})
        return 200, {"commitUrl": f"{self.url}/{key}/commit/{oid}", "commitOid": oid, "pullRequestUrl": None}

"""A real OpenAI-compatible chat server on 127.0.0.1 for tests and benchmarks, with scripted failures.

In-process (a thread running aiohttp.web)::

    with FakeOpenAIServer(latency=0.01) as server:
        server.fail_next("429:1", "malformed")      # the next two requests misbehave
        provider = {"model": "openai/fake", "api_base": server.base_url, ...}
        ...
        assert server.max_in_flight <= 4 and len(server.requests) == 3

``provider_for(server.base_url, concurrency=2)`` gives a provider dict for it. With Hydra the
same is ``provider=openai provider.api_base=URL provider.model=openai/fake-model``.

As a separate process (e.g. for a SIGKILL/resume test)::

    python -m tests.llm.fake_openai_server --port 0 --latency 0.05 [--fail 429,500]
    # prints "READY http://127.0.0.1:PORT/v1" once it listens; GET /_stats, POST /_script {"actions": [...]}

or ``with FakeOpenAIServerProcess(latency=0.05) as server: server.base_url, server.stats()``.

Scripted actions (each consumed by one request, in arrival order):
``429`` / ``429:SECONDS`` (rate limited, ``Retry-After``), ``500``, ``503``, ``400``, ``401``,
``hang`` / ``hang:SECONDS`` (answer only after the client has given up), ``malformed`` (broken
but repairable JSON), ``garbage`` (text with no JSON in it), ``mismatch`` (valid JSON that does not
fit the schema), ``empty`` (empty content), ``drop`` (close the connection without an answer).
``server.set_mode("503")`` (or ``POST /_mode {"mode": "503"}``) makes every request without a scripted
action misbehave that way until ``set_mode("")`` (a server that is down but still listening).
Otherwise the answer is ``responder(request_json) -> str``; the default builds a valid JSON
object for the requested ``json_schema`` from a hash of the messages (same request, same answer).

A request with ``"logprobs": true`` also gets ``choice.logprobs`` for its first token:
``logprob_responder(request_json, content) -> [(token, logprob), ...]`` (most likely first, at
most ``top_logprobs`` of them; the default gives the content's first word most of the mass).
``FakeOpenAIServer(logprobs=False)`` plays a provider that ignores the parameter.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

try:
    import orjson

    _loads = orjson.loads

    def _dumps(obj: Any) -> bytes:
        return orjson.dumps(obj)
except ImportError:  # pragma: no cover
    _loads = json.loads

    def _dumps(obj: Any) -> bytes:
        return json.dumps(obj).encode()


Responder = Callable[[dict[str, Any]], str]
LogprobResponder = Callable[[dict[str, Any], str], list[tuple[str, float]]]

_WORDS = (
    "data model train token layer vector batch query answer index schema record stage recipe "
    "document chunk table field value score label topic summary context source prompt sample "
    "metric graph node edge path cache retry server client request response format parser "
    "signal filter window buffer stream cluster embed rank search merge split export import "
    "quality review clarity detail example method result error limit option default config"
).split()


def messages_hash(request: dict[str, Any]) -> str:
    """sha256 of the request's messages (the deterministic seed of an answer)."""
    return hashlib.sha256(json.dumps(request.get("messages", []), sort_keys=True).encode()).hexdigest()


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    seen = 0
    while "$ref" in schema and seen < 32:
        ref = schema["$ref"]
        node: Any = root
        for part in ref.lstrip("#/").split("/"):
            node = node[part]
        schema = {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
        seen += 1
    return schema


def _sentence(rng: random.Random, name: str, lo: int = 0, hi: int | None = None) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(5, 10))]
    text = f"{name.replace('_', ' ')}: {' '.join(words)}".strip(": ") if name else " ".join(words)
    while len(text) < lo:
        text += " " + rng.choice(_WORDS)
    return text[:hi] if hi is not None else text


def _array_for(schema: dict[str, Any], rng: random.Random, root: dict[str, Any], name: str) -> list[Any]:
    lo = int(schema.get("minItems", 0))
    hi = int(schema.get("maxItems", max(lo, 3)))
    n = min(hi, max(lo, 2))
    prefix = schema.get("prefixItems") or []
    items = schema.get("items") if isinstance(schema.get("items"), dict) else {"type": "string"}
    out = [instance_for(p, rng, root, name) for p in prefix[:n]]
    out += [instance_for(items, rng, root, name) for _ in range(n - len(out))]
    return out


def _number_for(schema: dict[str, Any], kind: str, rng: random.Random) -> int | float:
    lo = schema.get("minimum", schema.get("exclusiveMinimum", None))
    hi = schema.get("maximum", schema.get("exclusiveMaximum", None))
    if "exclusiveMinimum" in schema and "minimum" not in schema:
        lo = lo + (1 if kind == "integer" else 1e-6)
    if "exclusiveMaximum" in schema and "maximum" not in schema:
        hi = hi - (1 if kind == "integer" else 1e-6)
    lo = 0 if lo is None else lo
    hi = lo + 10 if hi is None else hi
    if kind == "integer":
        import math

        return rng.randint(math.ceil(lo), math.floor(hi))
    return round(rng.uniform(lo, hi), 3)


def _string_for(schema: dict[str, Any], rng: random.Random, name: str) -> str:
    fmt = schema.get("format")
    if fmt == "date-time":
        return f"2024-01-{rng.randint(10, 28)}T12:00:00Z"
    if fmt == "date":
        return f"2024-01-{rng.randint(10, 28)}"
    if fmt == "email":
        return f"user{rng.randint(1, 999)}@example.com"
    if fmt in ("uri", "url"):
        return f"https://example.com/{rng.choice(_WORDS)}"
    return _sentence(rng, name, int(schema.get("minLength", 0)), schema.get("maxLength"))


def instance_for(schema: dict[str, Any], rng: random.Random, root: dict[str, Any] | None = None,
                 name: str = "") -> Any:
    """A value that validates against JSON ``schema``, chosen with ``rng``."""
    root = root if root is not None else schema
    schema = _resolve(schema, root)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return rng.choice(schema["enum"])
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [o for o in schema[key] if _resolve(o, root).get("type") != "null"] or schema[key]
            return instance_for(options[0], rng, root, name)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "string"
    if kind == "object":
        props = schema.get("properties") or {}
        if not props and isinstance(schema.get("additionalProperties"), dict):
            return {f"{name or 'key'}_{i}": instance_for(schema["additionalProperties"], rng, root, name)
                    for i in range(2)}
        return {k: instance_for(v, rng, root, k) for k, v in props.items()}
    if kind == "array":
        return _array_for(schema, rng, root, name)
    if kind in ("integer", "number"):
        return _number_for(schema, kind, rng)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    return _string_for(schema, rng, name)


def _passage(request: dict[str, Any]) -> str:
    """The text between triple quotes in the last user message (how the shipped prompts delimit passages)."""
    last = next((m.get("content") for m in reversed(request.get("messages", [])) if m.get("role") == "user"), "")
    m = re.search(r'"""\s*(.*?)\s*"""', str(last or ""), re.S)
    return m.group(1) if m else ""


def _grounded(value: Any, schema: dict[str, Any], request: dict[str, Any], rng: random.Random) -> Any:
    """QA-shaped answers from the prompt's passage, so the quality gates keep them (a question in
    question form made of passage words, an answer that is a passage sentence)."""
    passage = _passage(request)
    props = schema.get("properties") or {}
    if not passage or not isinstance(value, dict):
        return value
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", " ".join(passage.split())) if len(s.split()) >= 4]
    words = [w for w in re.findall(r"[A-Za-z][A-Za-z0-9_]{3,}", passage)]
    if "question" in value and isinstance(props.get("question"), dict) and words:
        value["question"] = f"How does {rng.choice(words)} relate to {rng.choice(words)}?"
    if "answer" in value and isinstance(props.get("answer"), dict) and sentences:
        value["answer"] = rng.choice(sentences)[: int(props["answer"].get("maxLength") or 800)]
    return value


def default_responder(request: dict[str, Any]) -> str:
    """A deterministic answer: valid JSON for a ``json_schema`` request, plain text otherwise.

    QA-shaped JSON (``question``/``answer``) is drawn from the prompt's passage; a one-token request
    (a judge's yes/no check) answers ``Yes``.
    """
    digest = messages_hash(request)
    rng = random.Random(int(digest[:16], 16))
    fmt = request.get("response_format") or {}
    if request.get("max_tokens") == 1 and fmt.get("type") not in ("json_schema", "json_object"):
        return "Yes"
    if fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema") or {}
        return json.dumps(_grounded(instance_for(schema, rng), schema, request, rng))
    if fmt.get("type") == "json_object":
        return json.dumps({"answer": _sentence(rng, "")})
    last = next((m.get("content") for m in reversed(request.get("messages", [])) if m.get("role") == "user"), "")
    return f"Answer {digest[:8]}: {_sentence(rng, '')}. (re: {str(last)[:60]})"


def default_logprobs(request: dict[str, Any], content: str) -> list[tuple[str, float]]:
    """The content's first word with most of the probability, then a few deterministic alternatives."""
    import math

    first = (content.split() or [""])[0]
    rng = random.Random(int(messages_hash(request)[:8], 16))
    top = rng.uniform(0.5, 0.95)
    alternatives = [w for w in ("Yes", "No", "The", "1", "5") if w != first][:4]
    rest = (1 - top) / len(alternatives)
    return [(first, math.log(top))] + [(w, math.log(rest)) for w in alternatives]


def logprobs_block(pairs: list[tuple[str, float]], k: int) -> dict[str, Any]:
    """An OpenAI ``choice.logprobs`` object for one token from ``[(token, logprob), ...]``."""
    top = [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in pairs[:max(1, k)]]
    first = top[0] if top else {"token": "", "logprob": 0.0, "bytes": []}
    return {"content": [{**first, "top_logprobs": top if k else []}]}


def _mismatch(request: dict[str, Any]) -> str:
    schema = ((request.get("response_format") or {}).get("json_schema") or {}).get("schema") or {}
    props = schema.get("properties") or {}
    if not props:
        return "[1, 2, 3]"
    return json.dumps({k: {"unexpected": [1]} for k in props})


def _approx_tokens(text: str) -> int:
    return max(1, len(text) // 4)


def provider_for(base_url: str, **overrides: Any) -> dict[str, Any]:
    """A synthrun provider dict that sends requests to a fake server at ``base_url``.

    Short timeouts and back-off so scripted failures resolve quickly; override anything.
    """
    provider = {
        "name": "fake", "model": "openai/fake-model", "api_base": base_url, "api_key_env": None,
        "concurrency": 4, "timeout": 10, "max_retries": 3, "temperature": 0.7, "max_tokens": 64,
        "seed": 0, "retry_backoff": 0.01,
    }
    provider.update(overrides)
    return provider


class FakeOpenAIServer:
    """An OpenAI-compatible chat server in a background thread (use as a context manager).

    Args:
        latency: Seconds each request waits before answering.
        responder: ``request_json -> content`` for normal answers (default :func:`default_responder`).
        port: Port to bind (0 = a free one).
        hang_seconds: How long a ``hang`` action waits before giving a (too late) answer.
        script: Initial scripted actions (see the module docstring).

    Attributes:
        base_url: ``http://127.0.0.1:PORT/v1``.
        requests: Every request body received, in arrival order.
        headers: The matching request headers.
        peers: The client address of each request's connection (tells new connections from reused ones).
        max_in_flight: Most requests handled at the same time.
    """

    def __init__(self, latency: float = 0.0, responder: Responder | None = None, host: str = "127.0.0.1",
                 port: int = 0, hang_seconds: float = 30.0, script: list[str] | None = None,
                 logprob_responder: LogprobResponder | None = None, logprobs: bool = True):
        self.latency = latency
        self.responder = responder or default_responder
        self.logprob_responder = logprob_responder or default_logprobs
        self.logprobs = logprobs
        self.host = host
        self.port = port
        self.hang_seconds = hang_seconds
        self.script: deque[str] = deque(script or [])
        self.mode = ""
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.peers: list[Any] = []  # (host, port) of the connection each request came on
        self.in_flight = 0
        self.max_in_flight = 0
        self.answered = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # ---------------------------------------------------------------- control

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def fail_next(self, *actions: str) -> None:
        """Queue actions for the next requests (``"429:1"``, ``"500"``, ``"hang"``, ``"malformed"`` ...)."""
        with self._lock:
            self.script.extend(str(a) for a in actions)

    def set_mode(self, mode: str) -> None:
        """Apply action ``mode`` to every request that has no scripted action ("" = answer normally)."""
        self.mode = str(mode)

    def stats(self) -> dict[str, int]:
        return {"requests": len(self.requests), "answered": self.answered, "max_in_flight": self.max_in_flight,
                "in_flight": self.in_flight, "pending_script": len(self.script)}

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.headers.clear()
            self.script.clear()
            self.max_in_flight = self.in_flight
            self.answered = 0

    # ---------------------------------------------------------------- aiohttp app

    def make_app(self):
        from aiohttp import web

        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/_stats", self._stats)
        app.router.add_post("/_script", self._script)
        app.router.add_post("/_reset", self._reset)
        app.router.add_post("/_mode", self._set_mode)
        return app

    async def _set_mode(self, request):
        from aiohttp import web

        self.set_mode((await request.json()).get("mode", ""))
        return web.json_response({"mode": self.mode})

    async def _models(self, request):
        from aiohttp import web

        return web.json_response({"object": "list", "data": [{"id": "fake", "object": "model"}]})

    async def _stats(self, request):
        from aiohttp import web

        return web.json_response(self.stats())

    async def _script(self, request):
        from aiohttp import web

        body = await request.json()
        self.fail_next(*body.get("actions", []))
        return web.json_response({"queued": len(self.script)})

    async def _reset(self, request):
        from aiohttp import web

        self.reset()
        return web.json_response({"ok": True})

    def _error_response(self, status: int, message: str, retry_after: float | None = None):
        from aiohttp import web

        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
        body = {"error": {"message": message, "type": "fake_error", "code": status}}
        return web.Response(status=status, body=_dumps(body), content_type="application/json", headers=headers)

    async def _chat(self, request):
        from aiohttp import web

        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            raw = await request.read()
            try:
                body = _loads(raw)
            except ValueError:
                return self._error_response(400, "request body is not JSON")
            with self._lock:
                self.requests.append(body)
                self.headers.append(dict(request.headers))
                self.peers.append(request.transport.get_extra_info("peername") if request.transport else None)
                action = self.script.popleft() if self.script else self.mode
            if self.latency:
                await asyncio.sleep(self.latency)
            kind, _, arg = action.partition(":")
            if kind == "429":
                return self._error_response(429, "Rate limit reached (fake)", float(arg) if arg else 0.0)
            if kind in ("500", "502", "503", "400", "401", "403", "404"):
                return self._error_response(int(kind), f"scripted HTTP {kind} (fake)")
            if kind == "hang":
                assert self._stop is not None
                try:
                    await asyncio.wait_for(self._stop.wait(), float(arg) if arg else self.hang_seconds)
                except asyncio.TimeoutError:
                    pass
            if kind == "drop":
                if request.transport is not None:
                    request.transport.close()
                return web.Response(status=500)
            if kind == "malformed":
                good = self.responder(body)
                content = good.rstrip().rstrip("}") + "," if good.rstrip().endswith("}") else "{" + good
            elif kind == "garbage":
                content = "I am sorry, but I cannot produce that answer right now."
            elif kind == "mismatch":
                content = _mismatch(body)
            elif kind == "empty":
                content = ""
            else:
                content = self.responder(body)
            prompt = " ".join(str(m.get("content", "")) for m in body.get("messages", []))
            p_tok, c_tok = _approx_tokens(prompt), _approx_tokens(content)
            choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": content},
                                      "finish_reason": "stop"}
            if body.get("logprobs") and self.logprobs:
                choice["logprobs"] = logprobs_block(self.logprob_responder(body, content),
                                                    int(body.get("top_logprobs") or 0))
            answer = {
                "id": f"chatcmpl-{len(self.requests)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "fake"),
                "choices": [choice],
                "usage": {"prompt_tokens": p_tok, "completion_tokens": c_tok, "total_tokens": p_tok + c_tok},
            }
            self.answered += 1
            return web.Response(body=_dumps(answer), content_type="application/json")
        finally:
            self.in_flight -= 1

    # ---------------------------------------------------------------- lifecycle

    async def _start(self) -> None:
        from aiohttp import web

        self._stop = asyncio.Event()
        self._runner = web.AppRunner(self.make_app(), access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=1024, reuse_address=True)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _shutdown(self) -> None:
        if self._stop is not None:
            self._stop.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def _serve(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._start())
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._shutdown())
        self._loop.close()

    def start(self) -> FakeOpenAIServer:
        self._thread = threading.Thread(target=self._serve, name="fake-openai-server", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise RuntimeError(f"fake OpenAI server failed to start: {self._error}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class FakeOpenAIServerProcess:
    """The same server in a child process (``python -m tests.llm.fake_openai_server``).

    Attributes:
        base_url: ``http://127.0.0.1:PORT/v1``.
    """

    def __init__(self, latency: float = 0.0, port: int = 0, script: list[str] | None = None,
                 hang_seconds: float = 30.0):
        self.args = [sys.executable, "-m", "tests.llm.fake_openai_server", "--port", str(port),
                     "--latency", str(latency), "--hang-seconds", str(hang_seconds)]
        if script:
            self.args += ["--fail", ",".join(script)]
        self.proc: subprocess.Popen | None = None
        self.base_url = ""

    def start(self) -> FakeOpenAIServerProcess:
        root = Path(__file__).resolve().parents[2]
        self.proc = subprocess.Popen(self.args, cwd=root, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        m = re.match(r"READY (\S+)", line)
        if not m:
            self.stop()
            raise RuntimeError(f"fake OpenAI server process did not start: {line!r}")
        self.base_url = m.group(1)
        return self

    def _call(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        url = self.base_url.rsplit("/v1", 1)[0] + path
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def stats(self) -> dict[str, int]:
        """``{"requests", "answered", "max_in_flight", ...}`` from the running server."""
        return self._call("/_stats")

    def fail_next(self, *actions: str) -> None:
        self._call("/_script", {"actions": list(actions)})

    def set_mode(self, mode: str) -> None:
        self._call("/_mode", {"mode": mode})

    def reset(self) -> None:
        self._call("/_reset", {})

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> FakeOpenAIServerProcess:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake OpenAI-compatible chat server on 127.0.0.1.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on the READY line)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    parser.add_argument("--hang-seconds", type=float, default=30.0)
    parser.add_argument("--fail", default="", help="comma-separated scripted actions, e.g. 429:1,500,malformed")
    args = parser.parse_args(argv)
    server = FakeOpenAIServer(latency=args.latency, host=args.host, port=args.port,
                              hang_seconds=args.hang_seconds, script=[a for a in args.fail.split(",") if a])

    async def serve() -> None:
        await server._start()
        print(f"READY {server.base_url}", flush=True)
        done = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, done.set)
        await done.wait()
        await server._shutdown()

    asyncio.run(serve())


if __name__ == "__main__":
    main()

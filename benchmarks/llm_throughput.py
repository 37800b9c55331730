"""Throughput of synthrun's LLM client against a bare aiohttp client on a loopback server.

    python benchmarks/llm_throughput.py [--n 2000] [--concurrency 64] [--latency 0.1] [--litellm]

Starts ``tests.llm.fake_openai_server`` in a child process (fixed latency per request), then
times (a) a bare aiohttp client, (b) ``LLMClient.map`` with schema validation and a fresh cache
file, and optionally (c) ``litellm.acompletion`` behind a semaphore, all sending the same
structured requests. Prints wall times and the ratio client / bare (goal: <= 1.3).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # litellm must not fetch its price list

from pydantic import BaseModel, Field  # noqa: E402

from tests.llm.fake_openai_server import FakeOpenAIServerProcess  # noqa: E402


class Rating(BaseModel):
    """The structured answer every request asks for."""

    question: str
    answer: str
    score: int = Field(ge=1, le=10)
    reasons: list[str]


def make_messages(n: int) -> list[list[dict[str, str]]]:
    return [
        [
            {"role": "system", "content": "You rate question/answer pairs and reply with JSON only."},
            {"role": "user", "content": f"Rate pair number {i}: what does stage {i % 17} of the recipe do?"},
        ]
        for i in range(n)
    ]


def response_format() -> dict:
    return {"type": "json_schema", "json_schema": {"name": "Rating", "schema": Rating.model_json_schema()}}


async def bare_aiohttp(base_url: str, all_messages, concurrency: int) -> int:
    """The floor: one session, a semaphore, post and decode; nothing else."""
    import aiohttp

    fmt = response_format()
    sem = asyncio.Semaphore(concurrency)
    ok = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(messages) -> None:
            nonlocal ok
            body = {"model": "fake", "messages": messages, "response_format": fmt, "temperature": 0.7,
                    "max_tokens": 200, "seed": 0}
            async with sem, session.post(f"{base_url}/chat/completions", json=body) as resp:
                data = await resp.json()
            json.loads(data["choices"][0]["message"]["content"])
            ok += 1

        await asyncio.gather(*(one(m) for m in all_messages))
    return ok


def synthrun_client(base_url: str, all_messages, concurrency: int, cache_dir: Path) -> int:
    from synthrun.llm.client import LLMClient
    from synthrun.llm.types import LLMRequest

    provider = {"name": "bench", "model": "openai/fake", "api_base": base_url, "api_key_env": None,
                "concurrency": concurrency, "timeout": 60, "max_retries": 2, "temperature": 0.7,
                "max_tokens": 200, "seed": 0}
    client = LLMClient(provider, cache_path=cache_dir / "bench-cache.sqlite", show_progress=True)
    requests = [LLMRequest(messages=m, schema=Rating, tag=i) for i, m in enumerate(all_messages)]
    results = client.map(requests, desc="synthrun LLMClient")
    client.close()
    bad = [r.error for r in results if not r.ok]
    if bad:
        print(f"  LLMClient: {len(bad)} failures: {sorted(set(bad))}")
    return len(results) - len(bad)


async def litellm_semaphore(base_url: str, all_messages, concurrency: int) -> int:
    import litellm

    fmt = response_format()
    sem = asyncio.Semaphore(concurrency)
    ok = 0

    async def one(messages) -> None:
        nonlocal ok
        async with sem:
            resp = await litellm.acompletion(model="openai/fake", api_base=base_url, api_key="none",
                                             messages=messages, response_format=fmt, temperature=0.7,
                                             max_tokens=200, seed=0)
        Rating.model_validate_json(resp.choices[0].message.content)
        ok += 1

    await asyncio.gather(*(one(m) for m in all_messages))
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--litellm", action="store_true", help="also time litellm.acompletion + semaphore")
    args = parser.parse_args()

    ideal = args.n / args.concurrency * args.latency
    print(f"{args.n} structured requests, concurrency {args.concurrency}, {args.latency * 1000:.0f} ms latency "
          f"(ideal {ideal:.2f} s)")
    with FakeOpenAIServerProcess(latency=args.latency) as server, tempfile.TemporaryDirectory() as tmp:
        # Different prompts per phase so nothing can be served from any cache.
        def msgs(phase: str):
            return [[*m[:-1], {"role": "user", "content": f"[{phase}] {m[-1]['content']}"}]
                    for m in make_messages(args.n)]

        asyncio.run(bare_aiohttp(server.base_url, msgs("warmup")[:200], args.concurrency))

        t0 = time.perf_counter()
        ok_bare = asyncio.run(bare_aiohttp(server.base_url, msgs("bare"), args.concurrency))
        bare = time.perf_counter() - t0
        print(f"(a) bare aiohttp          : {bare:6.2f} s  ({ok_bare} ok)")

        t0 = time.perf_counter()
        ok_client = synthrun_client(server.base_url, msgs("client"), args.concurrency, Path(tmp))
        client = time.perf_counter() - t0
        print(f"(b) synthrun LLMClient.map: {client:6.2f} s  ({ok_client} ok, schema-validated, fresh SQLite cache)")

        if args.litellm:
            t0 = time.perf_counter()
            import litellm  # noqa: F401  - import time is not part of the measurement

            t1 = time.perf_counter()
            ok_lite = asyncio.run(litellm_semaphore(server.base_url, msgs("litellm"), args.concurrency))
            lite = time.perf_counter() - t1
            print(f"(c) litellm.acompletion   : {lite:6.2f} s  ({ok_lite} ok; import took {t1 - t0:.1f} s)")
        print(f"ratio client / bare       : {client / bare:.2f}x  (goal <= 1.30x)")


if __name__ == "__main__":
    main()

"""Token prices from the provider override or litellm's shipped price table (without importing litellm)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from synthrun.llm.pricing import token_prices


def test_known_model_from_litellm_table():
    p_in, p_out = token_prices({"model": "openai/gpt-4o-mini"})
    assert p_in == pytest.approx(0.15e-6) and p_out == pytest.approx(0.6e-6)
    g_in, g_out = token_prices({"model": "gemini/gemini-2.0-flash"})
    assert 0 < g_in < g_out


def test_override_and_free_models():
    assert token_prices({"model": "openai/gpt-4o-mini", "price_in": 2, "price_out": 8}) == (2e-6, 8e-6)
    assert token_prices({"model": "local/smollm2-135m"}) == (0.0, 0.0)
    assert token_prices({"model": "hosted_vllm/Qwen/Qwen2.5-7B-Instruct"}) == (0.0, 0.0)
    assert token_prices({"model": "openai/no-such-model-xyz"}) == (0.0, 0.0)


def test_client_and_prices_do_not_import_heavy_packages():
    code = (
        "import sys; from synthrun.llm.client import LLMClient; from synthrun.llm.pricing import token_prices;"
        "assert token_prices({'model': 'openai/gpt-4o'})[0] > 0;"
        "LLMClient({'model': 'anthropic/claude-3-5-haiku-latest'});"
        "heavy = [m for m in ('litellm', 'torch', 'transformers') if m in sys.modules];"
        "assert not heavy, heavy"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr

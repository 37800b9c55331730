"""Which override keys and values count as secrets (refused before Hydra writes anything)."""

import pytest

from synthrun.secrets import SecretOverrideError, check_overrides, is_secret_key, redact


@pytest.mark.parametrize("key", ["provider.api_key", "apiKey", "hf_token", "publish.token", "x.extra.token",
                                 "password", "aws_secret_access_key", "private_key", "authorization"])
def test_secret_key_names(key):
    assert is_secret_key(key)


@pytest.mark.parametrize("key", ["generate.max_tokens", "max_tokens", "tokens_out", "provider.api_key_env",
                                 "token_env", "sort_key", "key", "curate.threshold",
                                 "provider.api_key_required", "secret_key_file"])
def test_ordinary_key_names(key):
    assert not is_secret_key(key)


def test_token_budgets_are_accepted_and_keys_refused():
    check_overrides(["generate.max_tokens=96", "curate.max_tokens=64", "provider.api_key_env=OPENAI_API_KEY"])
    with pytest.raises(SecretOverrideError) as err:
        check_overrides(["provider.api_key=abc"])
    assert "abc" not in str(err.value)
    with pytest.raises(SecretOverrideError):
        check_overrides(["provider.model=sk-abcdefghijklmnop"])


def test_redact_keeps_counts_and_hides_keys():
    cfg = {"provider": {"api_key": "zzz", "max_tokens": 384, "api_key_env": "OPENAI_API_KEY"},
           "publish": {"token": "hf_abcdefghijklmnopqrstu"}}
    out = redact(cfg)
    assert out["provider"] == {"api_key": "<redacted>", "max_tokens": 384, "api_key_env": "OPENAI_API_KEY"}
    assert out["publish"]["token"] == "<redacted>"

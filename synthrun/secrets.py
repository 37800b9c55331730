"""Keep keys out of saved configs, folder names and logs.

Hydra writes command-line overrides verbatim into ``.hydra/overrides.yaml`` and into
``override_dirname`` (so into folder names). Keys therefore come from the environment
only: overrides that look like secrets are refused before Hydra writes anything.
"""

from __future__ import annotations

import re
from typing import Any

# Words of a key name that mark its value as a secret, matched word by word so that
# ``max_tokens`` or ``tokens_out`` (counts) are not secrets while ``token`` or ``hf_token`` are.
_SECRET_WORDS = {"apikey", "secret", "secrets", "password", "passwd", "token", "credential",
                 "credentials", "authorization", "bearer", "auth"}
_COUNT_WORDS = {"max", "min", "num", "n", "count"}
# ``key`` alone is a field name (sort key, cache key); after one of these it is a credential.
_KEY_PREFIXES = {"api", "secret", "private", "access", "auth", "signing", "license"}
# Values that look like keys whatever the field is called.
_SECRET_VALUE = re.compile(
    r"^(sk-[A-Za-z0-9_\-]{8,}|sk-ant-[A-Za-z0-9_\-]{8,}|hf_[A-Za-z0-9]{16,}|AIza[0-9A-Za-z_\-]{20,}"
    r"|gh[pousr]_[A-Za-z0-9]{20,}|xox[abpr]-[A-Za-z0-9\-]{10,}|Bearer\s+\S+)$"
)


class SecretOverrideError(ValueError):
    """An override that would write a secret to disk."""


def is_secret_key(key: str) -> bool:
    """True when a config key's value would be a secret (``api_key``, ``hf_token``, ``password`` ...).

    The last word of the name decides: ``api_key_env`` names a variable, ``api_key_required`` is a
    flag and ``max_tokens`` a count, none of them secrets.
    """
    last = key.split(".")[-1].lstrip("+~")
    words = [w.lower() for w in re.split(r"[_\-]+|(?<=[a-z])(?=[A-Z])", last) if w]
    if not words or _COUNT_WORDS.intersection(words):
        return False
    if words[-1] == "key":
        return len(words) > 1 and words[-2] in _KEY_PREFIXES
    return words[-1] in _SECRET_WORDS


def looks_like_secret(value: str) -> bool:
    value = value.strip().strip("'\"")
    if _SECRET_VALUE.match(value):
        return True
    # Long opaque tokens: no path or model-name punctuation, mixed letters and digits.
    return (
        len(value) >= 32
        and re.fullmatch(r"[A-Za-z0-9_\-]+", value) is not None
        and re.search(r"[A-Za-z]", value) is not None
        and re.search(r"[0-9]", value) is not None
    )


def check_overrides(overrides: list[str]) -> None:
    """Raise :class:`SecretOverrideError` for any override carrying a key (the value is never echoed)."""
    for item in overrides:
        if "=" not in item or item.startswith("-"):
            continue
        key, value = item.split("=", 1)
        if value.strip() in ("", "null", "None") or value.strip().startswith("${oc.env:"):
            continue
        if is_secret_key(key) or looks_like_secret(value):
            raise SecretOverrideError(
                f"refusing override '{key}=<redacted>': keys and tokens come from the environment only "
                f"(export the key, and name the variable with e.g. provider.api_key_env=OPENAI_API_KEY); "
                f"nothing was written"
            )


def redact(obj: Any) -> Any:
    """Return a copy of a plain config/dict with secret-looking fields replaced by ``<redacted>``."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if isinstance(v, str) and (is_secret_key(str(k)) or looks_like_secret(v)):
                out[k] = "<redacted>"
            else:
                out[k] = redact(v)
        return out
    if isinstance(obj, list):
        return [redact(v) for v in obj]
    if isinstance(obj, str) and looks_like_secret(obj):
        return "<redacted>"
    return obj

"""Keep keys out of saved configs, folder names and logs.

Hydra writes command-line overrides verbatim into ``.hydra/overrides.yaml``, into
``override_dirname`` (so into folder names) and into its own error messages. Keys therefore
come from the environment only: an override that carries a key at any depth (a dict or list
value, a sweep choice) is refused before Hydra parses, composes or echoes anything. What is
saved anyway (config.yaml, ``.hydra/*``, logs, metrics) goes through :func:`redact`, which also
hides the password of ``scheme://user:password@host`` URLs.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from synthrun.errors import ConfigError

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
# The same shapes anywhere inside a longer text (a little longer, so paths like /tmp/sk-test pass).
_SECRET_INSIDE = re.compile(
    r"(?<![A-Za-z0-9_\-])(sk-[A-Za-z0-9_\-]{20,}|hf_[A-Za-z0-9]{16,}|AIza[0-9A-Za-z_\-]{20,}"
    r"|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|xox[abpr]-[A-Za-z0-9\-]{10,})"
    r"|\bBearer\s+[A-Za-z0-9._~+/\-]{8,}=*"
)
# ``scheme://user:password@host``: group 1 keeps ``scheme://user:``, group 2 is the password.
_CREDENTIALS_URL = re.compile(r"\b([A-Za-z][A-Za-z0-9+.\-]*://[^\s/@:'\"]*:)([^\s/@'\"]+)@")
# ``token: abc`` / ``api_key=abc`` inside text the override parser could not read.
_SECRET_ASSIGNMENT = re.compile(r"([A-Za-z][A-Za-z0-9_\-]*)\s*[:=]\s*([^\s,}\]'\"]+)")
REDACTED = "<redacted>"


class SecretOverrideError(ConfigError, ValueError):
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


def contains_secret(text: str) -> bool:
    """True when ``text`` is a key, holds a key-shaped string or has a URL with a password."""
    return looks_like_secret(text) or bool(_SECRET_INSIDE.search(text) or _CREDENTIALS_URL.search(text))


def redact_text(text: str) -> str:
    """``text`` with URL passwords and key-shaped strings replaced by ``<redacted>``."""
    text = _CREDENTIALS_URL.sub(lambda m: f"{m.group(1)}{REDACTED}@", text)
    return _SECRET_INSIDE.sub(REDACTED, text)


def _refuse(where: str, why: str = "keys and tokens") -> SecretOverrideError:
    return SecretOverrideError(
        f"refusing override '{where}=<redacted>': {why} come from the environment only "
        f"(export the key, and name the variable with e.g. provider.api_key_env=OPENAI_API_KEY); "
        f"nothing was written"
    )


def _is_unset(value: Any) -> bool:
    """No secret in it: null, empty, or a reference to an environment variable."""
    return value is None or (isinstance(value, str) and (value.strip() in ("", "null", "None")
                                                         or value.strip().startswith("${oc.env:")))


def _walk(value: Any, path: str, secret_field: bool) -> None:
    """Raise for a secret anywhere in a parsed override value (dicts, lists, sweeps, quoted strings)."""
    from hydra.core.override_parser.types import ChoiceSweep, Glob, QuotedString

    if isinstance(value, QuotedString):
        value = value.text
    if secret_field and not _is_unset(value):
        raise _refuse(path)
    if isinstance(value, str):
        if contains_secret(value):
            raise _refuse(path, "keys, tokens and passwords in URLs")
    elif isinstance(value, dict):
        for key, item in value.items():
            key_text = key.text if isinstance(key, QuotedString) else str(key)
            if contains_secret(key_text):
                raise _refuse(path)
            _walk(item, f"{path}.{key_text}", is_secret_key(key_text))
    elif isinstance(value, (list, tuple)):
        for item in value:
            _walk(item, path, False)
    elif isinstance(value, ChoiceSweep):
        for item in value.list:
            _walk(item, path, secret_field)
    elif isinstance(value, Glob):
        for item in [*value.include, *value.exclude]:
            _walk(item, path, secret_field)


def _scan_text(item: str) -> None:
    """Fallback for what the override parser cannot read: look at the raw text."""
    where = item.split("=", 1)[0] if "=" in item else "(argument)"
    if contains_secret(item) or (
        "=" in item and is_secret_key(where) and not _is_unset(item.split("=", 1)[1])
    ):
        raise _refuse(where)
    for name, value in _SECRET_ASSIGNMENT.findall(item.split("=", 1)[-1]):
        if is_secret_key(name) and not _is_unset(value):
            raise _refuse(f"{where}.{name}")


def check_overrides(overrides: list[str]) -> None:
    """Raise :class:`SecretOverrideError` for any override carrying a key (the value is never echoed).

    Each override is parsed with Hydra's own override grammar and its value walked at every depth;
    what the grammar cannot read is scanned as text. Hydra options (``-m``, ``--cfg job``) are skipped.
    """
    for item in overrides:
        if item.startswith("-") or "=" not in item:
            if contains_secret(item):
                raise _refuse("(argument)")
            continue
        try:
            from hydra.core.override_parser.overrides_parser import OverridesParser

            (override,) = OverridesParser.create().parse_overrides([item])
        except Exception:  # noqa: BLE001 - any parse failure: Hydra would echo the text, so scan it
            _scan_text(item)
            continue
        key = override.get_key_element().lstrip("+~")
        if contains_secret(key):
            raise _refuse("(key)")
        _walk(override._value, key, is_secret_key(key))


def redact(obj: Any) -> Any:
    """Return a copy of a plain config/dict with secrets replaced by ``<redacted>``.

    Fields named like secrets and key-shaped values are replaced whole; URL passwords and keys
    inside longer strings are replaced in place.
    """
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if isinstance(v, str) and not _is_unset(v) and (is_secret_key(str(k)) or looks_like_secret(v)):
                out[k] = REDACTED
            else:
                out[k] = redact(v)
        return out
    if isinstance(obj, list):
        return [redact(v) for v in obj]
    if isinstance(obj, str):
        return REDACTED if looks_like_secret(obj) else redact_text(obj)
    return obj


def redact_yaml_file(path: Path) -> None:
    """Rewrite a saved YAML file (``.hydra/config.yaml`` ...) with its secrets redacted, if it has any."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):  # not ours to parse: leave it, the run goes on
        return
    clean = redact(data)
    if clean != data:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(yaml.safe_dump(clean, sort_keys=False, allow_unicode=True), encoding="utf-8")
        tmp.replace(path)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts URL passwords and key-shaped strings from every message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact_text(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:  # the formatter uses exc_text when it is set
            record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))
        return True


def protect_run_folder(run_dir: Path, hydra_subdir: str | None = ".hydra", sweep_dir: Path | None = None) -> None:
    """Redact what Hydra saved (``.hydra/*``, a sweep's ``multirun.yaml``); filter every log handler."""
    saved = sorted((Path(run_dir) / hydra_subdir).glob("*.yaml")) if hydra_subdir else []
    if sweep_dir is not None:
        saved.append(Path(sweep_dir) / "multirun.yaml")
    for path in saved:
        if path.is_file():
            redact_yaml_file(path)
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())

"""An Ollama Modelfile for an exported GGUF: FROM, TEMPLATE from the chat template, stops, SYSTEM."""

from __future__ import annotations

from typing import Any

_CHATML = ("{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
           "<|im_start|>assistant\n")
_LLAMA3 = ("{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>"
           "{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n")


def default_system(tokenizer: Any) -> str | None:
    """The system message the chat template inserts when a conversation has none (e.g. SmolLM2's)."""
    probe = "\x00probe\x00"
    try:
        text = tokenizer.apply_chat_template([{"role": "user", "content": probe}], tokenize=False)
        with_sys = tokenizer.apply_chat_template([{"role": "system", "content": "\x00sys\x00"},
                                                  {"role": "user", "content": probe}], tokenize=False)
    except Exception:  # noqa: BLE001 - a template may reject these probes
        return None
    head, tail = with_sys.split("\x00sys\x00", 1)
    before = text.split(probe, 1)[0]
    after_sys = tail.split(probe, 1)[0]
    if before.startswith(head) and before.endswith(after_sys) and len(before) > len(head) + len(after_sys):
        return before[len(head): len(before) - len(after_sys)]
    return None


def template_for(chat_template: str) -> tuple[str | None, list[str]]:
    """The Go template and stop strings matching a Jinja chat template (None when not recognised)."""
    if "<|im_start|>" in chat_template:
        return _CHATML, ["<|im_end|>", "<|im_start|>"]
    if "<|start_header_id|>" in chat_template:
        return _LLAMA3, ["<|eot_id|>", "<|start_header_id|>"]
    return None, []


def render_modelfile(gguf_name: str, tokenizer: Any, system_prompt: str | None = None) -> str:
    """Modelfile text for ``gguf_name`` (a path relative to the Modelfile, or absolute)."""
    template, stops = template_for(tokenizer.chat_template or "")
    eos = tokenizer.eos_token
    if eos and eos not in stops:
        stops.append(eos)
    lines = [f"FROM {gguf_name}", ""]
    if template:
        lines += [f'TEMPLATE """{template}"""', ""]
    else:
        lines += ["# The chat template is not ChatML or Llama 3: Ollama uses the template stored in the GGUF.", ""]
    lines += [f'PARAMETER stop "{s}"' for s in stops]
    lines += ["PARAMETER temperature 0.7"]
    system = system_prompt if system_prompt is not None else default_system(tokenizer)
    if system:
        lines += ["", f'SYSTEM """{system}"""']
    return "\n".join(lines) + "\n"

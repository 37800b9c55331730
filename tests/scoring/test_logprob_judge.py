"""Reading scores from token distributions: OpenAI logprobs, sampled fallback, the embedded prefill."""

from __future__ import annotations

import math
import threading

import pytest

from synthrun.scoring.logprob_judge import (
    LocalProbe,
    Probe,
    distribution_from_openai,
    read_distribution,
    read_sampled,
)


def test_yes_probability_is_normalised_over_yes_and_no_spellings():
    dist = {"Yes": 0.3, " yes": 0.1, "No": 0.2, "The": 0.4}
    assert read_distribution(dist, "yes_no") == pytest.approx(0.4 / 0.6)
    assert read_distribution({"The": 1.0}, "yes_no") is None


def test_geval_expected_score_over_digit_tokens():
    # expected digit 0.5*2 + 0.5*4 = 3 on a 1-5 scale -> 0.5
    assert read_distribution({"2": 0.25, "4": 0.25, "x": 0.5}, "score", (1, 5)) == pytest.approx(0.5)
    assert read_distribution({"5": 1.0}, "score", (1, 5)) == pytest.approx(1.0)


def test_openai_logprobs_block_is_read():
    block = {"content": [{"token": "Yes", "logprob": math.log(0.6),
                          "top_logprobs": [{"token": "Yes", "logprob": math.log(0.6)},
                                           {"token": "No", "logprob": math.log(0.2)}]}]}
    dist = distribution_from_openai(block)
    assert dist == {"Yes": pytest.approx(0.6), "No": pytest.approx(0.2)}
    assert read_distribution(dist, "yes_no") == pytest.approx(0.75)
    assert distribution_from_openai(None) is None and distribution_from_openai({"content": []}) is None


def test_sampled_fallback_reads_the_token():
    assert read_sampled("Yes.", "yes_no") == 1.0
    assert read_sampled("no", "yes_no") == 0.0
    assert read_sampled("4", "score", (1, 5)) == pytest.approx(0.75)
    assert read_sampled("", "yes_no") is None


@pytest.mark.slow
def test_embedded_prefill_scores_match_with_and_without_the_shared_prefix_cache():
    import torch

    passage = ("Each open dataset keeps recently used chunks in a cache, 1 MiB by default. The cache size can "
               "be raised with the rdcc_nbytes argument of File. ") * 2
    probes = [Probe([{"role": "user", "content": f"Passage: {passage}\nQuestion: {q}\nReply yes or no."}])
              for q in ("Is the chunk cache 1 MiB by default?", "Is the chunk cache 64 KiB by default?")]
    probe = LocalProbe()
    threads = set()
    shared = probe.score(probes, progress=lambda: threads.add(threading.current_thread()))
    assert probe.passes == 2 and all(0.0 <= s <= 1.0 for s in shared)
    assert threads == {probe.engine._worker}  # the passes ran on the engine's thread
    # the same numbers from one plain forward pass per prompt, no cache
    for p, got in zip(probes, shared, strict=True):
        ids = probe.encode(p)
        with torch.inference_mode():
            probs = torch.softmax(probe.engine.model(input_ids=torch.tensor([ids])).logits[0, -1].float(), -1)
        dist: dict[str, float] = {}
        for tok, word in probe.answer_tokens("yes_no", (1, 5)).items():
            dist[word] = dist.get(word, 0.0) + float(probs[tok])
        assert got == pytest.approx(read_distribution(dist, "yes_no"), abs=1e-4)


@pytest.mark.slow
def test_embedded_scores_do_not_depend_on_how_probes_are_grouped():
    """Probes are prefilled in groups that fit a token budget (long prompts: smaller groups); a
    probe's score is the same bit for bit whatever its group."""
    from synthrun.llm.llama_fast import PrefixCache

    passage = "Chunked datasets are stored in regular blocks; each block is compressed on its own. " * 3
    probes = [Probe([{"role": "user", "content": f"Passage: {passage}\nQuestion: {q}\nReply yes or no."}])
              for q in ("Are chunks compressed one by one?", "Is the file one block?", "Are blocks regular?")]
    probe = LocalProbe()
    together = probe.score(probes)
    probe.group_tokens = 1  # one probe per group
    probe.engine.fast.prefix = PrefixCache()  # and nothing reused from the first call
    assert probe.score(probes) == together

"""Each quality gate with a pair it keeps and a pair it drops (and the reason it names)."""

from __future__ import annotations

import pytest

from synthrun.scoring.gates import GATES, GateConfig, QAItem, check, overlap, support_score

SOURCE = ("Chunk cache\n\nEach open dataset keeps recently used chunks in a cache, 1 MiB by default. "
          "The cache size can be raised with the rdcc_nbytes argument of File.")
GOOD = QAItem("How large is the chunk cache of an open dataset by default?", "The chunk cache is 1 MiB by default.",
              SOURCE)
CFG = GateConfig()


@pytest.mark.parametrize(("gate", "bad", "reason"), [
    ("interrogative", QAItem("The chunk cache is 1 MiB by default.", "Yes, it is.", SOURCE), "not_a_question"),
    ("interrogative", QAItem("Explain the chunk cache of a dataset?", "It keeps chunks.", SOURCE), "not_a_question"),
    ("length", QAItem("Cache size?", "1 MiB.", SOURCE), "question_too_short"),
    ("length", QAItem(GOOD.question, "x" * 3000, SOURCE), "answer_too_long"),
    ("vague", QAItem("What does the passage say?", "It says the cache is 1 MiB.", SOURCE), "vague_question"),
    ("vague", QAItem("What is this?", "A chunk cache.", SOURCE), "vague_question"),
    ("echo", QAItem(GOOD.question, "How large is the chunk cache of an open dataset by default.", SOURCE), "echo"),
    ("echo", QAItem(GOOD.question, "The chunk cache of an open dataset is large by default.", SOURCE), "echo"),
    ("meta", QAItem(GOOD.question, "As an AI, I cannot know the cache size.", SOURCE), "meta_phrase"),
    ("meta", QAItem(GOOD.question, "The answer is: 1 MiB.", SOURCE), "meta_phrase"),
    ("meta", QAItem(GOOD.question, "This passage says the cache holds 1 MiB.", SOURCE), "meta_phrase"),
    ("truncated", QAItem(GOOD.question, "The chunk cache of every open dataset is", SOURCE), "truncated"),
    ("truncated", QAItem(GOOD.question, "Each open dataset keeps recently used chunks in", SOURCE), "truncated"),
    ("repetition", QAItem(GOOD.question, "1 MiB 1 MiB 1 MiB 1 MiB 1 MiB 1 MiB 1 MiB 1 MiB.", SOURCE), "repetition"),
    ("repetition", QAItem(GOOD.question, "It is big big big big.", SOURCE), "repetition"),
    ("language", QAItem("Какой размер кэша чанков по умолчанию?", "Один мегабайт по умолчанию.", SOURCE), "language"),
    ("question_support", QAItem("Who painted the Mona Lisa?", "Leonardo da Vinci painted it.", SOURCE),
     "question_off_source"),
    ("answer_support", QAItem(GOOD.question, "The chunk cache is 64 KiB by default.", SOURCE), "unsupported_number"),
    ("answer_support", QAItem(GOOD.question, "Virtual datasets map several real datasets into one.", SOURCE),
     "unsupported_answer"),
])
def test_gate_drops_bad_pair_and_keeps_good_one(gate, bad, reason):
    assert GATES[gate](GOOD, CFG) is True
    assert GATES[gate](bad, CFG) == (False, reason)


@pytest.mark.parametrize("question", [
    "Why should very large chunks be avoided?",
    "In h5py, how is the chunk cache size raised?",
    "Up to what size can an unlimited axis grow?",
    "Is the shuffle filter lossless?",
])
def test_interrogative_accepts_question_forms(question):
    assert GATES["interrogative"](QAItem(question, "Yes."), CFG) is True


def test_short_answers_need_no_final_punctuation_but_dangling_words_do():
    assert GATES["truncated"](QAItem(GOOD.question, "1 MiB"), CFG) is True
    assert GATES["truncated"](QAItem(GOOD.question, "1 MiB of"), CFG) == (False, "truncated")
    assert GATES["truncated"](QAItem(GOOD.question, "```python\nf = h5py.File('a.h5')\n```"), CFG) is True


def test_embedding_similarity_rescues_a_paraphrased_answer():
    paraphrase = QAItem(GOOD.question, "A megabyte-sized store of recently touched pieces.", SOURCE)
    assert GATES["answer_support"](paraphrase, CFG) == (False, "unsupported_answer")
    paraphrase.similarity = 0.7
    assert GATES["answer_support"](paraphrase, CFG) is True


def test_check_reports_the_first_failing_gate_and_subsets_run_alone():
    item = QAItem("The cache is 1 MiB", "As an AI I cannot say", SOURCE)
    assert check(item, CFG) == (False, "not_a_question")
    assert check(item, CFG, ["meta"]) == (False, "meta_phrase")
    assert check(GOOD, CFG) == (True, None)


def test_overlap_and_support_score():
    assert overlap("The chunk cache is 1 MiB.", SOURCE) == 1.0
    assert overlap("Jupiter is a planet.", SOURCE) == 0.0
    assert support_score(GOOD) > support_score(QAItem(GOOD.question, "Jupiter is a large planet.", SOURCE))
    assert support_score(QAItem("What?", "Anything.")) == 1.0  # no source: nothing to check against

"""Heuristic complexity/quality scores react to the signals they claim to measure."""

from synthrun.scoring.heuristic import complexity, count_steps, quality, text_stats

Q = "How do I make my Python script read a large CSV file without running out of memory?"
RICH = ("1. Read the file in chunks: `pd.read_csv(path, chunksize=100_000)` yields DataFrames.\n"
        "2. Process each chunk and keep only the aggregated results.\n"
        "3. Finally, combine the partial results, because holding every row at once is what exhausts memory.\n\n"
        "Alternatively, load only the needed columns with `usecols` and smaller dtypes.")


def test_scores_stay_in_range_and_order_rich_above_terse():
    for ins, res in [("", ""), (Q, "Chunks."), (Q, RICH), ("x " * 5000, "y " * 5000)]:
        assert 0 <= complexity(ins, res) <= 10 and 0 <= quality(ins, res) <= 10
    assert quality(Q, RICH) > 6 > 2 > quality(Q, "Chunks.")
    assert complexity(Q, RICH) > complexity(Q, "Chunks.")
    assert quality(Q, "") == 0.0


def test_steps_are_counted_from_lists_connectives_and_explicit_steps():
    stats = text_stats(RICH)
    assert stats.list_lines == 3 and stats.has_code and stats.connectors >= 2
    assert count_steps(stats, explicit_steps=2) > count_steps(stats)
    assert complexity(Q, "Use chunks.", explicit_steps=5) > complexity(Q, "Use chunks.")


def test_repetition_off_topic_and_refusal_lower_quality():
    loop = " ".join(["read the file in chunks"] * 20) + "."
    assert quality(Q, loop) < quality(Q, RICH) / 2
    off_topic = "Bananas are an excellent source of potassium, and they ripen faster next to apples."
    on_topic = "Read the large CSV file in chunks with pandas so memory use stays flat while running."
    assert quality(Q, on_topic) > quality(Q, off_topic)
    assert quality(Q, "I'm sorry, but I cannot help with that. " + RICH) < quality(Q, RICH) / 2

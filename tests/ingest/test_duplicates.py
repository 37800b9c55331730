"""The duplicate index: exact repeats, containment in other files' text, short and own text."""

from synthrun.ingest.duplicates import DuplicateIndex

PAGE = ("Each open dataset has a chunk cache of one megabyte by default. When the working set of chunks "
        "does not fit into the cache, the same chunk is decompressed again and again, which is slow.")


def test_exact_and_near_duplicates_across_files():
    index = DuplicateIndex(threshold=0.8)
    index.add(PAGE, "docs/cache.rst")
    assert index.check(PAGE.upper().replace(".", " !"), "docs/cache.html") == ("exact", "docs/cache.rst")
    part = "Chapter 3\n" + PAGE[:150]  # a differently cut, re-wrapped piece of the same page
    assert index.check(part.replace(" ", "\n", 5), "manual.pdf") == ("near", "docs/cache.rst")
    other = "Attributes are small named values attached to groups and datasets; use them for metadata."
    assert index.check(other, "manual.pdf") is None


def test_own_text_and_short_text_are_not_near_duplicates():
    index = DuplicateIndex(threshold=0.8)
    index.add(PAGE, "docs/cache.rst")
    assert index.check(PAGE[:150], "docs/cache.rst") is None  # overlap with itself is chunk overlap
    assert index.check("chunk cache", "manual.pdf") is None  # too short to judge by 5-grams
    assert DuplicateIndex(threshold=0.95).check(PAGE, "x") is None  # nothing kept yet


def test_ingest_normalises_text_exactly_as_the_dedup_stage_does():
    # ingest keeps its own copy (a library must not import a stage); both must stay the same key
    from synthrun.ingest.duplicates import normalize
    from synthrun.stages.dedup import normalize as stage_normalize

    samples = ["Hello, World!", "  HDF5 -- chunked\tstorage\n(v1.14)  ", "Ünïcode: straße…", "a_b c-d", ""]
    for text in samples:
        assert normalize(text) == stage_normalize(text)
    assert normalize("Hello, World!") == "hello world"

"""Our low-overlap needle set keeps its promise: no content word shared with the question."""

from benchmarks.lowoverlap import ALL_PAIRS, MORE_PAIRS, PAIRS, content_words


def test_lowoverlap_pairs_share_no_content_word():
    assert len(PAIRS) >= 20 and len(MORE_PAIRS) >= 20 and ALL_PAIRS == PAIRS + MORE_PAIRS
    assert len({p.answer for p in ALL_PAIRS}) == len(ALL_PAIRS)  # every pair has its own person
    for pair in ALL_PAIRS:
        asked = content_words(pair.question)
        assert asked, pair.question
        for needle in (pair.person_first, pair.fact_first):
            assert pair.answer in needle
            assert not asked & content_words(needle), (pair.question, needle)
            assert len(content_words(pair.control) & content_words(needle)) >= 2, (pair.control, needle)
        assert pair.person_first.startswith(pair.answer) and not pair.fact_first.startswith(pair.answer)


def test_content_words_stem_and_drop_function_words():
    assert content_words("Which person has visited Venice?") == {"visit", "venic"}
    assert content_words("The visitors were in Venice.") == {"visit", "venic"}


def test_needle_halves_are_disjoint_and_the_first_pairs_keep_theirs():
    from benchmarks.multihop import needle_pairs, split_items

    dev, test = needle_pairs("dev", 0), needle_pairs("test", 0)
    assert not set(dev) & set(test)
    assert sorted(dev + test) == list(range(len(ALL_PAIRS)))
    assert abs(len(dev) - len(test)) <= 2
    for half, pairs in (("dev", dev), ("test", test)):  # the halves the first 26 pairs had on their own
        assert [p for p in pairs if p < len(PAIRS)] == split_items(list(range(len(PAIRS))), "needles", half, 0)
    assert needle_pairs("all", 0) == list(range(len(ALL_PAIRS)))

"""Our low-overlap needle set keeps its promise: no content word shared with the question."""

from benchmarks.lowoverlap import MORE_PAIRS, PAIRS, content_words


def test_lowoverlap_pairs_share_no_content_word():
    every = PAIRS + MORE_PAIRS
    assert len(PAIRS) >= 20 and len(MORE_PAIRS) >= 20
    assert len({p.answer for p in every}) == len(every)  # every pair has its own person
    for pair in every:
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

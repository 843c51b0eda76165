"""Low-overlap needles: the key fact implies the answer without sharing a content word with the question.

Written for this project after the idea of NoLiMa (arXiv 2502.05167): keyword search cannot
find these needles, and a retriever has to know that the Rialto Bridge is in Venice. Every
pair has two word orders of its needle (the person first, or the fact first), a question that
shares no content word with either, and a control question that reuses the needle's words, so
that the lexical and the non-lexical case are measured side by side on the same haystacks.

``content_words`` and the test ``tests/test_bench.py::test_lowoverlap_pairs_share_no_content_word``
check the "no shared word" promise for every pair.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from entropy_retriever.signals import STOPWORDS as FUNCTION_WORDS


@dataclass(frozen=True)
class NeedlePair:
    person_first: str  # the needle, the person named first
    fact_first: str  # the same fact, the key phrase first
    question: str  # shares no content word with either needle
    control: str  # reuses the needle's words
    answer: str


PAIRS: tuple[NeedlePair, ...] = (
    NeedlePair("Tomasz spent every weekend of the year sketching the canals beside the Rialto Bridge.",
               "The canals beside the Rialto Bridge are what Tomasz sketched every weekend of the year.",
               "Which person has visited Venice?", "Which person sketched the canals beside the Rialto Bridge?", "Tomasz"),
    NeedlePair("Oksana keeps a signed photograph of herself standing under the towers of the Sagrada Família.",
               "Under the towers of the Sagrada Família stands Oksana, in a signed photograph she keeps.",
               "Which person has travelled to Barcelona?", "Which person keeps a signed photograph under the Sagrada Família?", "Oksana"),
    NeedlePair("Henrik rode the cable car up Table Mountain with his niece last spring.",
               "The cable car up Table Mountain carried Henrik and his niece last spring.",
               "Which person has visited Cape Town?", "Which person rode the cable car up Table Mountain?", "Henrik"),
    NeedlePair("Amara's favourite breakfast is a bowl of natto over warm rice.",
               "A bowl of natto over warm rice is Amara's favourite breakfast.",
               "Which person enjoys fermented soybeans?", "Which person has a bowl of natto for breakfast?", "Amara"),
    NeedlePair("Dmitri practises the cello for two hours before dinner each evening.",
               "The cello gets two hours of practice from Dmitri before dinner each evening.",
               "Which person plays a stringed instrument?", "Which person practises the cello before dinner?", "Dmitri"),
    NeedlePair("Lucía was stung by a jellyfish while snorkelling on the Great Barrier Reef.",
               "On the Great Barrier Reef, a jellyfish stung Lucía while she was snorkelling.",
               "Which person has travelled to Australia?", "Which person was stung by a jellyfish on the Great Barrier Reef?", "Lucía"),
    NeedlePair("Kwame carries an adrenaline pen because a single peanut could make him gravely ill.",
               "A single peanut could make Kwame gravely ill, so he carries an adrenaline pen.",
               "Which person has a food allergy?", "Which person carries an adrenaline pen because of a peanut?", "Kwame"),
    NeedlePair("Ingrid climbed the steps of the Temple of Heaven in the early morning mist.",
               "The steps of the Temple of Heaven were climbed by Ingrid in the early morning mist.",
               "Which person has toured Beijing?", "Which person climbed the steps of the Temple of Heaven?", "Ingrid"),
    NeedlePair("Rafael's apartment window looks straight out onto the statue of Christ the Redeemer.",
               "The statue of Christ the Redeemer is what Rafael's apartment window looks straight out onto.",
               "Which person lives in Rio de Janeiro?", "Which person has an apartment window onto the statue of Christ the Redeemer?", "Rafael"),
    NeedlePair("Mei Ling wrote her doctoral thesis on the migration of monarch butterflies.",
               "The migration of monarch butterflies was the subject of Mei Ling's doctoral thesis.",
               "Which person is an expert on insects?", "Which person wrote a thesis on monarch butterflies?", "Mei Ling"),
    NeedlePair("Olusegun milks the goats and collects the eggs from the henhouse before sunrise.",
               "Before sunrise the goats are milked and the henhouse eggs collected by Olusegun.",
               "Which person works on a farm?", "Which person milks the goats before sunrise?", "Olusegun"),
    NeedlePair("Sven refuses every dish with meat, eggs, milk or honey in it.",
               "Every dish with meat, eggs, milk or honey in it is refused by Sven.",
               "Which person is a vegan?", "Which person refuses every dish with meat, eggs, milk or honey?", "Sven"),
    NeedlePair("Aiko flew home from the Louvre with a print of the Mona Lisa in her suitcase.",
               "A print of the Mona Lisa from the Louvre flew home in Aiko's suitcase.",
               "Which person has visited Paris?", "Which person flew home from the Louvre with a print of the Mona Lisa?", "Aiko"),
    NeedlePair("Gabriel swims laps at dawn while training for the Olympic relay.",
               "Training for the Olympic relay, Gabriel swims laps at dawn.",
               "Which person is an athlete?", "Which person swims laps at dawn for the Olympic relay?", "Gabriel"),
    NeedlePair("Nadia fixed the leaking pipe under the sink and then rewired the kitchen lights.",
               "The leaking pipe under the sink and the kitchen lights were fixed and rewired by Nadia.",
               "Which person is handy with household repairs?", "Which person fixed the leaking pipe under the sink?", "Nadia"),
    NeedlePair("Pedro guides tourists along the Inca trail up to Machu Picchu every summer.",
               "Along the Inca trail up to Machu Picchu, tourists are guided by Pedro every summer.",
               "Which person works in Peru?", "Which person guides tourists along the Inca trail to Machu Picchu?", "Pedro"),
    NeedlePair("Yusuf was born in a village in the shadow of the pyramids at Giza.",
               "In the shadow of the pyramids at Giza lies the village where Yusuf was born.",
               "Which person comes from Egypt?", "Which person was born in the shadow of the pyramids at Giza?", "Yusuf"),
    NeedlePair("Chiara reads bedtime stories each night to her three-year-old twins.",
               "Bedtime stories are read each night by Chiara to her three-year-old twins.",
               "Which person is a mother?", "Which person reads bedtime stories to her twins?", "Chiara"),
    NeedlePair("Arjun's left arm sits in a plaster cast after he fell off his bicycle.",
               "A plaster cast holds Arjun's left arm after he fell off his bicycle.",
               "Which person broke a bone?", "Which person fell off his bicycle and has a plaster cast?", "Arjun"),
    NeedlePair("Elif photographed the northern lights over Tromsø during the polar night.",
               "The northern lights over Tromsø were photographed by Elif during the polar night.",
               "Which person has travelled to Norway?", "Which person photographed the northern lights over Tromsø?", "Elif"),
    NeedlePair("Bruno spends his nights at the observatory charting distant galaxies through the telescope.",
               "Distant galaxies are charted through the observatory telescope by Bruno at night.",
               "Which person is an astronomer?", "Which person charts distant galaxies through the telescope?", "Bruno"),
    NeedlePair("Hana bought a kimono and a tea set in a small shop near the Kinkaku-ji temple.",
               "In a small shop near the Kinkaku-ji temple, a kimono and a tea set were bought by Hana.",
               "Which person has been to Kyoto?", "Which person bought a kimono near the Kinkaku-ji temple?", "Hana"),
    NeedlePair("Mateo wakes at four to knead the dough and fire up the ovens for the morning loaves.",
               "The dough for the morning loaves is kneaded by Mateo, who wakes at four to fire up the ovens.",
               "Which person is a baker?", "Which person wakes at four to knead the dough for the morning loaves?", "Mateo"),
    NeedlePair("Freya's grandmother taught her to knit scarves from the wool of their own sheep.",
               "Knitting scarves from the wool of their own sheep is what Freya's grandmother taught her.",
               "Which person can make clothing from yarn?", "Which person learned to knit scarves from her grandmother?", "Freya"),
    NeedlePair("Kofi heard the bells of Big Ben chime midnight from the bank of the Thames.",
               "The bells of Big Ben chimed midnight as Kofi stood on the bank of the Thames.",
               "Which person has visited London?", "Which person heard the bells of Big Ben chime midnight?", "Kofi"),
    NeedlePair("Lena's cat needs an insulin injection twice a day.",
               "An insulin injection twice a day is what Lena's cat needs.",
               "Which person owns a diabetic pet?", "Whose cat needs an insulin injection twice a day?", "Lena"),
)

# Words that carry no content for this check: BM25's function words and the questions' frame.
STOPWORDS = FUNCTION_WORDS | {"every", "four", "one", "onto", "person", "two"}


def content_words(text: str) -> set[str]:
    """Lower-cased word stems (the first five letters), function words left out."""
    words = re.findall(r"[^\W\d_]+", text.lower())
    return {w[:5] for w in words if w not in STOPWORDS and len(w) > 1}

"""Low-overlap needles: the key fact implies the answer without sharing a content word with the question.

Written for this project after the idea of NoLiMa (arXiv 2502.05167): keyword search cannot
find these needles, and a retriever has to know that the Rialto Bridge is in Venice. Every
pair has two word orders of its needle (the person first, or the fact first), a question that
shares no content word with either, and a control question that reuses the needle's words, so
that the lexical and the non-lexical case are measured side by side on the same haystacks.

``content_words`` and the test ``tests/bench/test_lowoverlap.py::test_lowoverlap_pairs_share_no_content_word``
check the "no shared word" promise for every pair. ``PAIRS`` (26) came first; ``MORE_PAIRS`` (26 more,
written before any method was run on them) doubles the pairs of the evidence suite at the shipped
configuration (``benchmarks.multihop``), whose halves held 13 pairs each, too few to tell a
five-point lead from one needle's luck. The older suites (``benchmarks.evidence``) read ``PAIRS`` only.
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

# Written before any run on them, in the style of PAIRS; split into halves on their own
# (``benchmarks.multihop.load_needles``), so that the first pairs keep their halves.
MORE_PAIRS: tuple[NeedlePair, ...] = (
    NeedlePair("Sophie watched the sunrise over the temples of Angkor Wat from the back of a tuk-tuk.",
               "The sunrise over the temples of Angkor Wat was what Sophie watched from the back of a tuk-tuk.",
               "Which person has travelled to Cambodia?", "Which person watched the sunrise over the temples of Angkor Wat?", "Sophie"),
    NeedlePair("Marco propped up the tilting bell tower of Pisa for a photograph his sister still teases him about.",
               "The tilting bell tower of Pisa was propped up by Marco for a photograph his sister still teases him about.",
               "Which person has been to Italy?", "Which person propped up the tilting bell tower of Pisa in a photograph?", "Marco"),
    NeedlePair("Ravi rode a camel past the Taj Mahal as the marble turned pink at dawn.",
               "Past the Taj Mahal, as the marble turned pink at dawn, Ravi rode a camel.",
               "Which person has visited India?", "Which person rode a camel past the Taj Mahal?", "Ravi"),
    NeedlePair("Greta counted down to midnight at the foot of the Brandenburg Gate on New Year's Eve.",
               "At the foot of the Brandenburg Gate, Greta counted down to midnight on New Year's Eve.",
               "Which person has been to Berlin?", "Which person counted down to midnight at the Brandenburg Gate?", "Greta"),
    NeedlePair("Tariq queued for three hours to see the terracotta warriors in Xi'an.",
               "The terracotta warriors in Xi'an were what Tariq queued three hours to see.",
               "Which person has toured China?", "Which person queued to see the terracotta warriors in Xi'an?", "Tariq"),
    NeedlePair("Ines learned to tango in a crowded milonga in San Telmo.",
               "In a crowded milonga in San Telmo, Ines learned to tango.",
               "Which person has been to Argentina?", "Which person learned to tango in a milonga in San Telmo?", "Ines"),
    NeedlePair("Olivia hiked down from the rim of the Grand Canyon with her brother in July.",
               "From the rim of the Grand Canyon, Olivia and her brother hiked down in July.",
               "Which person has visited Arizona?", "Which person hiked down from the rim of the Grand Canyon?", "Olivia"),
    NeedlePair("Hugo fills cavities and pulls aching molars from eight in the morning until six.",
               "Cavities are filled and aching molars pulled by Hugo from eight in the morning until six.",
               "Which person is a dentist?", "Which person fills cavities and pulls aching molars?", "Hugo"),
    NeedlePair("Priya cross-examines witnesses and argues her clients' cases before the judge.",
               "Before the judge, Priya argues her clients' cases and cross-examines witnesses.",
               "Which person is a lawyer?", "Which person cross-examines witnesses before the judge?", "Priya"),
    NeedlePair("Jonas flies a Boeing 747 across the Atlantic twice a week from the cockpit's left seat.",
               "From the cockpit's left seat, a Boeing 747 is flown across the Atlantic by Jonas twice a week.",
               "Which person is an airline captain?", "Which person flies a Boeing 747 across the Atlantic?", "Jonas"),
    NeedlePair("Zara reads her novels with her fingertips in Braille and walks with a white cane.",
               "With her fingertips in Braille Zara reads her novels, and she walks with a white cane.",
               "Which person is visually impaired?", "Which person reads novels in Braille and walks with a white cane?", "Zara"),
    NeedlePair("Emeka wears a hearing aid in each ear and reads lips in noisy rooms.",
               "A hearing aid in each ear and lip reading in noisy rooms help Emeka.",
               "Which person is partially deaf?", "Which person wears a hearing aid in each ear?", "Emeka"),
    NeedlePair("Lars celebrated his fortieth wedding anniversary with a dinner by the fjord last May.",
               "His fortieth wedding anniversary was celebrated by Lars with a dinner by the fjord last May.",
               "Which person is married?", "Which person celebrated his fortieth wedding anniversary?", "Lars"),
    NeedlePair("Camila chats in Mandarin, Arabic, Russian and Portuguese without an accent.",
               "Mandarin, Arabic, Russian and Portuguese are all spoken by Camila without an accent.",
               "Which person is multilingual?", "Which person chats in Mandarin, Arabic, Russian and Portuguese?", "Camila"),
    NeedlePair("Noah grows tomatoes, courgettes and runner beans in the plot behind his house.",
               "Tomatoes, courgettes and runner beans grow in the plot behind Noah's house.",
               "Which person has a vegetable garden?", "Which person grows tomatoes and runner beans behind his house?", "Noah"),
    NeedlePair("Anika ran all twenty-six miles through the streets of Boston last April.",
               "All twenty-six miles through the streets of Boston were run by Anika last April.",
               "Which person has completed a marathon?", "Which person ran twenty-six miles through the streets of Boston?", "Anika"),
    NeedlePair("Bilal drinks three espressos before noon and grinds his own beans.",
               "Three espressos before noon, from beans he grinds himself, are what Bilal drinks.",
               "Which person loves coffee?", "Which person drinks three espressos before noon?", "Bilal"),
    NeedlePair("Ruth's tabby and her two Siamese purr on the windowsill all afternoon.",
               "On the windowsill, a tabby and two Siamese belonging to Ruth purr all afternoon.",
               "Which person keeps cats?", "Whose tabby and two Siamese purr on the windowsill?", "Ruth"),
    NeedlePair("Diego spends his weekends inspecting the hulls of sunken ships with an oxygen tank on his back.",
               "The hulls of sunken ships are inspected by Diego on weekends, an oxygen tank on his back.",
               "Which person explores underwater?", "Which person inspects the hulls of sunken ships with an oxygen tank?", "Diego"),
    NeedlePair("Keiko delivered three babies during her night shift on the maternity ward.",
               "Three babies were delivered by Keiko during her night shift on the maternity ward.",
               "Which person is a midwife?", "Which person delivered three babies on the maternity ward?", "Keiko"),
    NeedlePair("Omar fasts from dawn until sunset throughout Ramadan.",
               "Throughout Ramadan, from dawn until sunset, Omar fasts.",
               "Which person is a Muslim?", "Which person fasts from dawn until sunset throughout Ramadan?", "Omar"),
    NeedlePair("Yara wears a shirt with Messi's number to every match at the stadium.",
               "A shirt with Messi's number is what Yara wears to every match at the stadium.",
               "Which person follows a soccer team?", "Which person wears a shirt with Messi's number to the stadium?", "Yara"),
    NeedlePair("Felix pitched his tent beside the lake and cooked trout over the fire.",
               "Beside the lake, Felix pitched his tent and cooked trout over the fire.",
               "Which person went camping?", "Which person pitched his tent beside the lake and cooked trout?", "Felix"),
    NeedlePair("Leila turned a Japanese novel into English over two long winters.",
               "Over two long winters, a Japanese novel was turned into English by Leila.",
               "Which person is a translator?", "Which person turned a Japanese novel into English?", "Leila"),
    NeedlePair("Viktor was sentenced to ten years and shares a cell with two other inmates.",
               "Sentenced to ten years, Viktor shares a cell with two other inmates.",
               "Which person is in jail?", "Which person was sentenced to ten years and shares a cell?", "Viktor"),
    NeedlePair("Nia took the ferry from Dover to Calais with her bicycle last summer.",
               "The ferry from Dover to Calais carried Nia and her bicycle last summer.",
               "Which person has crossed the English Channel?", "Which person took the ferry from Dover to Calais?", "Nia"),
)

# Every pair, as the shipped configuration's evidence suite indexes them.
ALL_PAIRS: tuple[NeedlePair, ...] = PAIRS + MORE_PAIRS

# Words that carry no content for this check: BM25's function words and the questions' frame.
STOPWORDS = FUNCTION_WORDS | {"every", "four", "one", "onto", "person", "two"}


def content_words(text: str) -> set[str]:
    """Lower-cased word stems (the first five letters), function words left out."""
    words = re.findall(r"[^\W\d_]+", text.lower())
    return {w[:5] for w in words if w not in STOPWORDS and len(w) > 1}

#!/usr/bin/env python3
"""The text of the mini_en corpus: a small English grammar over a curated lexicon of common words.

Every sentence is lowercase and made only of letters, spaces, apostrophes and the
punctuation ``. , ?`` so that a character-level CTC judge can spell it. The lexicon
below is the whole vocabulary (:data:`VOCAB`): frequent nouns, verbs (with their
inflected forms written out, so no morphology rules can go wrong), adjectives,
adverbs, places, times and small numbers; no proper names and no rare words.

Two generators:

* :func:`generate_sentences` -- ordinary sentences of 4-14 words (statements,
  questions, requests, small compound sentences) for train/dev/test;
* :func:`generate_hard_sentences` -- the ``test_hard`` set: repetitions
  ("go go go go"), long sentences of 20-30 words, numbers written as words and
  tongue twisters (alliterations over the same lexicon).

Both are deterministic functions of a :class:`random.Random` (Python's generator
is stable across versions, unlike numpy's), so the same seed gives the same text.

Usage::

    python local/sentences.py --num 20 --seed 1        # print 20 sentences
    python local/sentences.py --num 20 --hard          # print 20 test_hard sentences
    python local/sentences.py --count 20000            # how many distinct of 20000 draws

    from sentences import generate_sentences
    sents = generate_sentences(2500, random.Random(0))  # 2500 distinct sentences
"""

from __future__ import annotations

import argparse
import random
import re
from collections.abc import Callable

# ----------------------------------------------------------------------------------------
# Lexicon. Nouns are "singular plural"; mass nouns have no plural.
# ----------------------------------------------------------------------------------------

PEOPLE = [
    "boy boys", "girl girls", "man men", "woman women", "child children", "baby babies",
    "friend friends", "teacher teachers", "doctor doctors", "farmer farmers", "driver drivers",
    "student students", "neighbor neighbors", "worker workers", "player players", "nurse nurses",
    "singer singers", "person people", "cook cooks", "pilot pilots",
]  # fmt: skip
FAMILY = [
    "mother", "father", "sister", "brother", "uncle", "aunt", "son", "daughter", "cousin",
    "grandmother", "grandfather", "wife", "husband", "friend", "teacher", "neighbor",
]  # fmt: skip
ANIMALS = [
    "dog dogs", "cat cats", "bird birds", "horse horses", "cow cows", "sheep sheep", "duck ducks",
    "rabbit rabbits", "mouse mice", "pig pigs", "bear bears", "fox foxes", "chicken chickens",
    "goat goats", "frog frogs", "fish fish", "puppy puppies", "kitten kittens",
]  # fmt: skip
THINGS = [
    "book books", "box boxes", "bag bags", "cup cups", "bottle bottles", "key keys", "hat hats",
    "coat coats", "shoe shoes", "ball balls", "phone phones", "pen pens", "letter letters",
    "picture pictures", "chair chairs", "table tables", "lamp lamps", "clock clocks", "map maps",
    "ticket tickets", "basket baskets", "blanket blankets", "radio radios", "camera cameras",
    "toy toys", "bell bells", "plate plates", "spoon spoons", "bucket buckets", "candle candles",
    "shirt shirts", "jacket jackets", "glass glasses", "window windows", "door doors",
    "umbrella umbrellas", "towel towels", "ring rings", "stone stones", "kite kites",
]  # fmt: skip
FOODS = [
    "apple apples", "orange oranges", "cake cakes", "egg eggs", "sandwich sandwiches",
    "banana bananas", "pie pies", "cookie cookies", "potato potatoes", "tomato tomatoes",
    "carrot carrots", "lemon lemons", "onion onions", "pear pears",
]  # fmt: skip
MASS_FOODS = ["bread", "soup", "rice", "milk", "tea", "coffee", "cheese", "water", "juice", "fruit",
              "meat", "fish", "chicken", "sugar", "salt", "butter", "honey", "pasta"]  # fmt: skip
VEHICLES = ["car cars", "bus buses", "train trains", "boat boats", "bike bikes", "truck trucks",
            "plane planes", "ship ships", "taxi taxis"]  # fmt: skip
TEXTS = ["book books", "letter letters", "story stories", "note notes", "message messages",
         "newspaper newspapers", "list lists", "card cards", "poem poems", "report reports"]  # fmt: skip
FIXTURES = ["door doors", "window windows", "gate gates", "fence fences", "wall walls", "roof roofs",
            "room rooms", "kitchen kitchens", "house houses", "garden gardens", "floor floors"]  # fmt: skip
# place, the preposition for "being there"
PLACES = [
    ("park", "in"), ("beach", "on"), ("market", "at"), ("station", "at"), ("school", "at"),
    ("office", "in"), ("river", "by"), ("garden", "in"), ("kitchen", "in"), ("library", "in"),
    ("hospital", "at"), ("farm", "on"), ("lake", "by"), ("bridge", "on"), ("shop", "in"),
    ("hotel", "at"), ("city", "in"), ("village", "in"), ("town", "in"), ("forest", "in"),
    ("mountain", "on"), ("church", "at"), ("museum", "in"), ("restaurant", "at"), ("airport", "at"),
    ("zoo", "at"), ("bank", "at"), ("corner", "on"), ("hill", "on"), ("field", "in"),
    ("playground", "in"), ("house", "in"), ("street", "on"), ("road", "on"), ("island", "on"),
    ("harbor", "in"), ("bakery", "at"), ("garage", "in"),
]  # fmt: skip
# base 3sg past ing; "-" marks a verb that is not used in the progressive
VERBS_TRANSITIVE = {
    "see sees saw seeing": "people animals things vehicles",
    "watch watches watched watching": "people animals vehicles",
    "find finds found finding": "things animals texts",
    "lose loses lost losing": "things",
    "take takes took taking": "things foods",
    "bring brings brought bringing": "things foods",
    "carry carries carried carrying": "things foods",
    "buy buys bought buying": "things foods vehicles",
    "sell sells sold selling": "things foods vehicles",
    "want wants wanted -": "things foods animals",
    "need needs needed -": "things foods",
    "like likes liked -": "things foods animals people",
    "love loves loved -": "foods animals people",
    "open opens opened opening": "openables",
    "close closes closed closing": "openables",
    "clean cleans cleaned cleaning": "fixtures vehicles things",
    "paint paints painted painting": "fixtures vehicles",
    "fix fixes fixed fixing": "fixtures vehicles things",
    "wash washes washed washing": "vehicles things animals",
    "cook cooks cooked cooking": "foods",
    "eat eats ate eating": "foods",
    "read reads read reading": "texts",
    "write writes wrote writing": "texts",
    "hold holds held holding": "things animals",
    "catch catches caught catching": "catchables",
    "throw throws threw throwing": "throwables",
    "drop drops dropped dropping": "things foods",
    "call calls called calling": "people",
    "help helps helped helping": "people",
    "visit visits visited visiting": "people",
    "meet meets met meeting": "people",
    "follow follows followed following": "people animals",
    "feed feeds fed feeding": "animals",
    "draw draws drew drawing": "animals things",
    "drive drives drove driving": "drivables",
    "miss misses missed missing": "catchables people",
    "hear hears heard hearing": "animals people",
    "keep keeps kept keeping": "things animals",
    "move moves moved moving": "things",
    "share shares shared sharing": "foods things",
}
NON_AGENTIVE = {"want", "need", "like", "love", "hear", "lose", "miss", "drop", "see"}
OPENABLES = ["door", "window", "gate", "box", "bag", "bottle", "letter", "book", "shop"]
CATCHABLES = ["ball", "bus", "train", "fish", "kite", "taxi", "plane"]
THROWABLES = ["ball", "stone", "bag", "key", "hat", "apple", "orange"]
DRIVABLES = ["car", "bus", "truck", "taxi", "train", "boat"]
# intransitive verbs of motion ("to the place") and of being somewhere ("in the place")
VERBS_MOTION = [
    "walk walks walked walking", "run runs ran running", "go goes went going",
    "drive drives drove driving", "swim swims swam swimming", "travel travels traveled traveling",
    "come comes came coming", "hurry hurries hurried hurrying", "return returns returned returning",
    "move moves moved moving", "ride rides rode riding", "fly flies flew flying",
]  # fmt: skip
VERBS_STAY = [
    "sleep sleeps slept sleeping", "sit sits sat sitting", "wait waits waited waiting",
    "stay stays stayed staying", "play plays played playing", "work works worked working",
    "sing sings sang singing", "dance dances danced dancing", "rest rests rested resting",
    "study studies studied studying", "live lives lived -", "stand stands stood standing",
    "eat eats ate eating", "read reads read reading", "swim swims swam swimming",
    "laugh laughs laughed laughing", "talk talks talked talking", "cry cries cried crying",
]  # fmt: skip
ADJECTIVES = [
    "big", "small", "old", "new", "young", "red", "blue", "green", "white", "black", "yellow",
    "brown", "happy", "quiet", "loud", "warm", "cold", "hot", "long", "short", "tall", "clean",
    "dirty", "heavy", "light", "fast", "slow", "busy", "empty", "full", "strong", "kind", "nice",
    "good", "pretty", "little", "bright", "dark", "soft", "hard", "fresh", "sweet", "lucky",
    "tired", "hungry", "friendly", "funny", "strange", "simple", "careful", "wet", "dry", "cheap",
    "great", "lovely", "famous", "gentle", "proud", "brave", "clever", "calm", "sad", "angry",
]  # fmt: skip
THING_ADJECTIVES = [
    "big", "small", "old", "new", "red", "blue", "green", "white", "black", "yellow", "brown",
    "heavy", "light", "clean", "dirty", "empty", "full", "pretty", "little", "bright", "dark",
    "soft", "hard", "wet", "dry", "cheap", "lovely", "strange", "simple", "long", "short",
]  # fmt: skip
FOOD_ADJECTIVES = ["fresh", "sweet", "hot", "cold", "warm", "big", "small", "good", "cheap", "lovely"]
PERSON_ADJECTIVES = [
    "young", "old", "tall", "happy", "quiet", "busy", "tired", "hungry", "kind", "nice", "good",
    "friendly", "funny", "strong", "careful", "lucky", "brave", "clever", "calm", "proud", "little",
]  # fmt: skip
STATE_ADJECTIVES = [
    "happy", "quiet", "busy", "tired", "hungry", "ready", "late", "early", "calm", "kind",
    "sad", "angry", "cold", "warm", "sick", "proud", "careful", "lucky", "afraid", "sorry",
]  # fmt: skip
WEATHER = ["cold", "warm", "hot", "wet", "dry", "windy", "sunny", "cloudy", "dark", "quiet", "nice"]
ADVERBS = [
    "quickly", "slowly", "quietly", "carefully", "happily", "loudly", "again", "together",
    "alone", "early", "late", "today", "outside", "at once", "with care", "very well",
]  # fmt: skip
TIMES = [
    "today", "tonight", "tomorrow", "yesterday", "this morning", "this evening", "last night",
    "next week", "last week", "on monday", "on tuesday", "on wednesday", "on thursday", "on friday",
    "on saturday", "on sunday", "in the morning", "after lunch", "before dinner", "at noon",
    "every day", "at night", "in winter", "in summer", "in the spring", "after school",
    "before work", "every weekend", "at seven o'clock", "at nine o'clock", "last year", "soon",
    "right now", "this afternoon", "every morning", "after dinner",
]  # fmt: skip
FUTURE_TIMES = ["tomorrow", "tonight", "next week", "soon", "this evening", "on monday", "on friday",
                "after lunch", "next year", "later", "in the morning", "this afternoon"]  # fmt: skip
PAST_TIMES = ["yesterday", "last night", "last week", "last year", "this morning", "on sunday",
              "on saturday", "after lunch", "two days ago", "a week ago", "before dinner"]  # fmt: skip
NUMBERS = ["two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"]
POSSESSIVES = ["my", "our", "your", "his", "her", "their"]
CONNECTORS = ["and", "but", "so", "because", "while", "and then", "after that"]

# ----------------------------------------------------------------------------------------
# Word lists used by the generators
# ----------------------------------------------------------------------------------------


def _pairs(entries: list[str]) -> list[tuple[str, str]]:
    out = []
    for e in entries:
        parts = e.split()
        out.append((parts[0], parts[-1]))
    return out


_PEOPLE = _pairs(PEOPLE)
_ANIMALS = _pairs(ANIMALS)
_THINGS = _pairs(THINGS)
_FOODS = _pairs(FOODS)
_VEHICLES = _pairs(VEHICLES)
_TEXTS = _pairs(TEXTS)
_FIXTURES = _pairs(FIXTURES)
_SINGLE = {"openables": OPENABLES, "catchables": CATCHABLES, "throwables": THROWABLES,
           "drivables": DRIVABLES}  # fmt: skip
_CATEGORY = {"people": _PEOPLE, "animals": _ANIMALS, "things": _THINGS, "foods": _FOODS,
             "vehicles": _VEHICLES, "texts": _TEXTS, "fixtures": _FIXTURES}  # fmt: skip


class Verb:
    """A verb with its forms written out: base, third person singular, past, -ing (or None)."""

    def __init__(self, forms: str, objects: str = ""):
        base, s3, past, ing = forms.split()
        self.base, self.s3, self.past = base, s3, past
        self.ing = None if ing == "-" else ing
        self.objects = objects.split()
        # verbs one does not ask someone to do ("please want the cake")
        self.agentive = base not in NON_AGENTIVE


_TRANSITIVE = [Verb(f, o) for f, o in VERBS_TRANSITIVE.items()]
_AGENTIVE = [v for v in _TRANSITIVE if v.agentive]
_MOTION = [Verb(f) for f in VERBS_MOTION]
_STAY = [Verb(f) for f in VERBS_STAY]

# A few contractions and words only the templates use.
_TEMPLATE_WORDS = """
a an the some this that these those i you he she it we they me him us them my our your his her their
is am are was were be been being do does did don't doesn't didn't can can't could will won't would
should must might may have has had to of in on at by near behind outside into from with for about
and but so because while then after that before when where why how what who which there here
not very too also just please let's it's i'm we're they're isn't wasn't there's what's
all every many much more most few lots lot no yes think hope know say said says tell told ask asked
like likes liked wants want wanted needs need needed time leave leaves left does start starts started
again today tomorrow yesterday tonight o'clock ago later next last year years week weeks day days
morning evening afternoon night noon lunch dinner breakfast school work weekend winter summer spring
monday tuesday wednesday thursday friday saturday sunday now right once care well than one
going getting got get gets tried try tries trying hard sure maybe hopes hoped
""".split()


def _collect_vocab() -> frozenset[str]:
    words: set[str] = set(_TEMPLATE_WORDS)

    def add(entries):
        for e in entries:
            words.update(e.split() if isinstance(e, str) else e)

    for lst in (PEOPLE, FAMILY, ANIMALS, THINGS, FOODS, MASS_FOODS, VEHICLES, TEXTS, FIXTURES,
                OPENABLES, CATCHABLES, THROWABLES, DRIVABLES, ADJECTIVES, THING_ADJECTIVES,
                PERSON_ADJECTIVES, FOOD_ADJECTIVES, STATE_ADJECTIVES, WEATHER, ADVERBS, TIMES, FUTURE_TIMES, PAST_TIMES,
                NUMBERS, POSSESSIVES, CONNECTORS, VERBS_MOTION, VERBS_STAY):  # fmt: skip
        add(lst)
    add(p for p, _ in PLACES)
    add(p for _, p in PLACES)
    for forms in VERBS_TRANSITIVE:
        add([forms])
    words.update(HARD_WORDS)
    words.discard("-")
    return frozenset(words)


# ----------------------------------------------------------------------------------------
# The grammar
# ----------------------------------------------------------------------------------------


def article(word: str, definite: bool) -> str:
    """'the', 'a' or 'an' for the word that follows (every lexicon word starting with a
    vowel letter also starts with a vowel sound)."""
    if definite:
        return "the"
    return "an" if word[0] in "aeiou" else "a"


class Grammar:
    """Sentence generator. Every method takes the random draws from ``self.rng`` only."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    def pick(self, seq):
        return self.rng.choice(seq)

    def maybe(self, p: float) -> bool:
        return self.rng.random() < p

    # -- noun phrases ---------------------------------------------------------------------
    def np_from(
        self,
        pairs: list[tuple[str, str]],
        adjectives: list[str],
        plural: bool | None = None,
        definite: bool | None = None,
        adj_p: float = 0.4,
    ) -> tuple[str, bool]:
        """A noun phrase from ``pairs``; returns (text, is_plural)."""
        sing, plur = self.pick(pairs)
        if plural is None:
            plural = self.maybe(0.3)
        if definite is None:
            definite = self.maybe(0.6)
        noun = plur if plural else sing
        words = [noun]
        if self.maybe(adj_p):
            words.insert(0, self.pick(adjectives))
        if plural:
            det = (
                self.pick(["the", "the", "some", "these", "those", "two", "three", "many"])
                if definite or self.maybe(0.5)
                else ""
            )
        elif definite:
            det = self.pick(["the", "the", "the", "this", "that"])
        else:
            det = article(words[0], False)
        return " ".join(([det] if det else []) + words), plural

    def person(self, plural: bool | None = None) -> tuple[str, bool]:
        """A person: 'the tall teacher', 'my sister', 'our neighbors', "my brother's friend"."""
        r = self.rng.random()
        if r < 0.35:
            rel = self.pick(FAMILY)
            # "our husband" is odd: spouses only with a singular possessive
            poss = self.pick(
                POSSESSIVES[:1] + POSSESSIVES[2:5] if rel in ("wife", "husband") else POSSESSIVES
            )
            if self.maybe(0.12):
                return f"{poss} {rel}'s {self.pick(FAMILY)}", False
            return f"{poss} {rel}", False
        return self.np_from(_PEOPLE, PERSON_ADJECTIVES, plural=plural)

    def subject(self) -> tuple[str, str]:
        """(text, agreement) with agreement one of 'i', 'you', '3sg', 'pl'."""
        r = self.rng.random()
        if r < 0.25:
            pron = self.pick(["i", "you", "we", "they", "he", "she"])
            agr = {"i": "i", "you": "you", "we": "pl", "they": "pl"}.get(pron, "3sg")
            return pron, agr
        if r < 0.75:
            text, plural = self.person()
        else:
            text, plural = self.np_from(_ANIMALS, ADJECTIVES, definite=True)
        return text, "pl" if plural else "3sg"

    def obj(self, verb: Verb) -> str:
        """An object that makes sense for ``verb``."""
        cat = self.pick(verb.objects)
        if cat in _SINGLE:
            noun = self.pick(_SINGLE[cat])
            if self.maybe(0.3):
                noun = f"{self.pick(THING_ADJECTIVES)} {noun}"
            return f"{self.pick(['the', 'the', 'my', 'our', 'your', 'her', 'his'])} {noun}"
        if cat == "people":
            text, _ = self.person()
            return text
        if cat == "foods" and self.maybe(0.35):
            food = self.pick(MASS_FOODS)
            if self.maybe(0.3):
                food = f"{self.pick(FOOD_ADJECTIVES)} {food}"
            return f"{self.pick(['some', 'the', 'more'])} {food}" if self.maybe(0.8) else food
        adjs = {"foods": FOOD_ADJECTIVES, "animals": ADJECTIVES}.get(cat, THING_ADJECTIVES)
        text, _ = self.np_from(_CATEGORY[cat], adjs)
        if self.maybe(0.12) and cat in ("things", "animals", "vehicles"):
            owner = self.pick(["my", "our", "your", "the"]) + " " + self.pick(FAMILY + ["farmer", "teacher"])
            noun = text.split()[-1]
            return f"{owner}'s {noun}"
        return text

    def place(self, motion: bool) -> str:
        name, prep = self.pick(PLACES)
        if motion:
            return f"to the {name}"
        prep = prep if self.maybe(0.6) else self.pick(["near", "behind", "outside", "by"])
        return f"{prep} the {name}"

    # -- verb forms ---------------------------------------------------------------------
    @staticmethod
    def present(verb: Verb, agr: str) -> str:
        return verb.s3 if agr == "3sg" else verb.base

    @staticmethod
    def be(agr: str, past: bool = False) -> str:
        if past:
            return "was" if agr in ("i", "3sg") else "were"
        return {"i": "am", "3sg": "is"}.get(agr, "are")

    def predicate(self, agr: str) -> str:
        """A verb phrase in a random tense with its object or place."""
        kind = self.rng.random()
        if kind < 0.55:
            verb = self.pick(_TRANSITIVE)
            rest = self.obj(verb)
        elif kind < 0.8:
            verb = self.pick(_MOTION)
            rest = self.place(motion=True)
        else:
            verb = self.pick(_STAY)
            rest = self.place(motion=False)
        tense = self.rng.random()
        if tense < 0.4:
            vp = f"{verb.past} {rest}"
            tail = self.pick(PAST_TIMES) if self.maybe(0.4) else ""
        elif tense < 0.6:
            vp = f"{self.present(verb, agr)} {rest}"
            tail = (
                self.pick(
                    [
                        "every day",
                        "every morning",
                        "on sunday",
                        "every weekend",
                        "at night",
                        "after school",
                        "in summer",
                        "in winter",
                    ]
                )
                if self.maybe(0.4)
                else ""
            )
        elif tense < 0.75:
            modal = self.pick(["will", "will", "can", "should", "must", "might", "could", "would like to"])
            vp = f"{modal} {verb.base} {rest}"
            tail = self.pick(FUTURE_TIMES) if self.maybe(0.4) else ""
        elif tense < 0.88 and verb.ing:
            vp = f"{self.be(agr)} {verb.ing} {rest}"
            tail = (
                self.pick(["now", "right now", "today", "this morning", "tonight"]) if self.maybe(0.3) else ""
            )
        else:
            neg = {"3sg": "doesn't", "pl": "don't", "i": "don't", "you": "don't"}[agr]
            neg = self.pick([neg, "didn't", "can't", "won't"])
            vp = f"{neg} {verb.base} {rest}"
            tail = ""
        if not tail and self.maybe(0.2):
            tail = self.pick(ADVERBS)
        return f"{vp} {tail}".strip()

    # -- templates ----------------------------------------------------------------------
    def statement(self) -> str:
        subj, agr = self.subject()
        return f"{subj} {self.predicate(agr)}."

    def question(self) -> str:
        r = self.rng.random()
        subj, agr = self.subject()
        verb = self.pick(_TRANSITIVE)
        if r < 0.2:
            return f"did {subj} {verb.base} {self.obj(verb)} {self.pick(PAST_TIMES)}?"
        if r < 0.35:
            return f"{self.pick(['can', 'will', 'should', 'could'])} {subj} {verb.base} {self.obj(verb)}?"
        if r < 0.5:
            aux = "does" if agr == "3sg" else "do"
            return f"why {aux} {subj} {verb.base} {self.obj(verb)}?"
        if r < 0.6:
            noun = self.pick(_THINGS + _FOODS)[1]
            return (
                f"how many {noun} did {subj} {self.pick(['buy', 'bring', 'find', 'want', 'need', 'take'])}?"
            )
        if r < 0.7:
            thing, plural = self.np_from(_THINGS + _ANIMALS + _VEHICLES, THING_ADJECTIVES, definite=True)
            return f"where {'are' if plural else 'is'} {thing}?"
        if r < 0.8:
            motion = self.pick(_MOTION)
            aux = "does" if agr == "3sg" else "do"
            return f"when {aux} {subj} {motion.base} {self.place(True)}?"
        if r < 0.9:
            verb = self.pick(_AGENTIVE)
            return f"do you want to {verb.base} {self.obj(verb)} {self.pick(FUTURE_TIMES)}?"
        return f"who {verb.past} {self.obj(verb)}?"

    def copula(self) -> str:
        r = self.rng.random()
        if r < 0.35:
            thing, plural = self.np_from(
                _THINGS + _VEHICLES + _FIXTURES, THING_ADJECTIVES, definite=True, adj_p=0
            )
            adj = self.pick(THING_ADJECTIVES)
            if self.maybe(0.5):
                adj = f"{adj} and {self.pick(THING_ADJECTIVES)}"
            return f"{thing} {self.be('pl' if plural else '3sg', self.maybe(0.5))} {self.pick(['very ', 'too ', ''])}{adj}."
        if r < 0.6:
            subj, agr = self.subject()
            tail = f" {self.pick(TIMES)}" if self.maybe(0.5) else ""
            return f"{subj} {self.be(agr, self.maybe(0.5))} {self.pick(['very ', 'so ', ''])}{self.pick(STATE_ADJECTIVES)}{tail}."
        if r < 0.8:
            lead = self.pick(["it is", "it's", "it was", "it will be"])
            return f"{lead} {self.pick(WEATHER)} {self.place(False)} {self.pick(TIMES)}."
        if self.maybe(0.5):
            text, plural = self.np_from(_ANIMALS + _THINGS + _VEHICLES, THING_ADJECTIVES, definite=False)
            if plural and text.split()[0] in ("the", "these", "those"):
                text = " ".join(text.split()[1:])
            head = (
                f"there {'are' if plural else 'is'}"
                if self.maybe(0.7)
                else f"there {'were' if plural else 'was'}"
            )
        else:
            noun = self.pick(_ANIMALS + _THINGS + _PEOPLE)[1]
            text = f"{self.pick(NUMBERS)} {noun}"
            head = self.pick(["there are", "there were"])
        return f"{head} {text} {self.place(False)}."

    def request(self) -> str:
        verb = self.pick(_AGENTIVE)
        r = self.rng.random()
        if r < 0.35:
            tail = f" {self.pick(ADVERBS)}" if self.maybe(0.5) else ""
            return f"please {verb.base} {self.obj(verb)}{tail}."
        if r < 0.55:
            return f"don't {verb.base} {self.obj(verb)} {self.pick(FUTURE_TIMES)}."
        if r < 0.8:
            motion = self.pick(_MOTION)
            return f"let's {motion.base} {self.place(True)} {self.pick(FUTURE_TIMES)}."
        return (
            f"{self.pick(['you should', 'we must', 'we need to', 'i want to'])} {verb.base} {self.obj(verb)}."
        )

    def opinion(self) -> str:
        subj, agr = self.subject()
        lead = self.pick(
            ["i think", "i hope", "we know", "she said", "he says", "they told me", "i'm sure", "maybe"]
        )
        if lead == "maybe":
            return f"maybe {subj} {self.predicate(agr)}."
        return f"{lead} {'that ' if self.maybe(0.3) else ''}{subj} {self.predicate(agr)}."

    def liking(self) -> str:
        subj, agr = self.subject()
        verb = self.pick(_TRANSITIVE)
        lk = self.pick(["like", "want", "need", "love", "try", "hope"])
        lk = {"try": "tries", "hope": "hopes"}.get(lk, lk + "s") if agr == "3sg" else lk
        if self.maybe(0.4):
            lk = {
                "try": "tried",
                "hope": "hoped",
                "like": "liked",
                "love": "loved",
                "want": "wanted",
                "need": "needed",
                "tries": "tried",
                "hopes": "hoped",
                "likes": "liked",
                "loves": "loved",
                "wants": "wanted",
                "needs": "needed",
            }[lk]
        tail = f" {self.pick(TIMES)}" if self.maybe(0.4) else ""
        return f"{subj} {lk} to {verb.base} {self.obj(verb)}{tail}."

    def compound(self) -> str:
        subj, agr = self.subject()
        first = self.pick(_MOTION)
        second = self.pick(_TRANSITIVE)
        if self.maybe(0.5):
            return f"{subj} {first.past} {self.place(True)} and {second.past} {self.obj(second)}."
        subj2, _ = self.subject()
        lead = self.pick(["when", "after", "before", "because", "while"])
        if lead == "while" and first.ing:
            return f"while {subj} {self.be(agr, True)} {first.ing} {self.place(True)}, {subj2} {second.past} {self.obj(second)}."
        return f"{lead} {subj} {first.past} {self.place(True)}, {subj2} {second.past} {self.obj(second)}."

    def possession(self) -> str:
        subj, agr = self.subject()
        have = self.pick(["has" if agr == "3sg" else "have", "had"])
        pairs = self.pick([_ANIMALS, _THINGS, _VEHICLES, _FOODS])
        noun = self.pick(pairs)
        adj = f"{self.pick(THING_ADJECTIVES)} " if self.maybe(0.5) else ""
        if self.maybe(0.5):
            return f"{subj} {have} {self.pick(NUMBERS)} {adj}{noun[1]}."
        first = (adj or noun[0])[0]
        return f"{subj} {have} {'an' if first in 'aeiou' else 'a'} {adj}{noun[0]}{' ' + self.pick(TIMES) if self.maybe(0.3) else ''}."

    def sentence(self) -> str:
        kinds: list[tuple[float, Callable[[], str]]] = [
            (0.30, self.statement), (0.14, self.question), (0.12, self.copula), (0.10, self.request),
            (0.10, self.opinion), (0.08, self.liking), (0.09, self.compound), (0.07, self.possession),
        ]  # fmt: skip
        r = self.rng.random() * sum(w for w, _ in kinds)
        for w, fn in kinds:
            r -= w
            if r < 0:
                return fn()
        return kinds[-1][1]()


# ----------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------

MIN_WORDS = 4
MAX_WORDS = 14
_ALLOWED = re.compile(r"^[a-z' .,?]+$")


def clean(text: str) -> str:
    """Normalize spacing and check the character set."""
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r" ([.,?])", r"\1", text)
    if not _ALLOWED.match(text):
        raise ValueError(f"sentence has characters outside [a-z' .,?]: {text!r}")
    return text


def words(text: str) -> list[str]:
    """The words of a sentence, punctuation removed (apostrophes kept)."""
    return re.sub(r"[.,?]", " ", text).split()


def num_words(text: str) -> int:
    return len(words(text))


def generate_sentences(
    num: int, rng: random.Random, exclude: set[str] | None = None, max_tries: int | None = None
) -> list[str]:
    """``num`` distinct sentences of 4-14 words, none of them in ``exclude``.

    Raises RuntimeError if the grammar cannot produce that many (it produces well over
    100,000 distinct sentences).
    """
    exclude = exclude or set()
    grammar = Grammar(rng)
    out: list[str] = []
    seen: set[str] = set()
    tries = 0
    max_tries = max_tries or 50 * num + 1000
    while len(out) < num:
        tries += 1
        if tries > max_tries:
            raise RuntimeError(f"the grammar gave only {len(out)} distinct sentences of {num} asked")
        s = clean(grammar.sentence())
        if s in seen or s in exclude or not MIN_WORDS <= num_words(s) <= MAX_WORDS:
            continue
        seen.add(s)
        out.append(s)
    return out


# -- test_hard ---------------------------------------------------------------------------

ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
        "nineteen"]  # fmt: skip
TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def number_to_words(n: int) -> str:
    """0 <= n < 1,000,000 in words, British style: 'one hundred and five'."""
    if not 0 <= n < 1_000_000:
        raise ValueError(f"number out of range: {n}")
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else " " + ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return f"{ONES[n // 100]} hundred" + ("" if rest == 0 else f" and {number_to_words(rest)}")
    rest = n % 1000
    head = f"{number_to_words(n // 1000)} thousand"
    if rest == 0:
        return head
    return f"{head} and {number_to_words(rest)}" if rest < 100 else f"{head} {number_to_words(rest)}"


REPEAT_WORDS = ["go", "no", "yes", "stop", "run", "come", "wait", "now", "help", "hey", "okay", "up",
                "down", "jump", "more", "faster", "left", "right", "again", "please", "ready", "yeah",
                "bye", "push", "pull", "hello", "hurry", "look", "listen", "slow"]  # fmt: skip
REPEAT_PAIRS = ["left right", "up down", "yes no", "stop go", "in out", "on off", "tick tock",
                "ping pong", "ding dong", "open close", "back forth"]  # fmt: skip
TWISTERS = [
    "she sells sea shells by the sea shore.",
    "red leather, yellow leather, red leather, yellow leather.",
    "six sick sheep sat by six thick bricks.",
    "a big black bug bit a big black bear.",
    "fresh fried fish for four fine friends.",
    "toy boat, toy boat, toy boat, toy boat.",
    "which witch wished which wicked wish?",
    "good blood, bad blood, good blood, bad blood.",
    "a proper copper coffee pot.",
    "three free throws, three free throws.",
    "she sees cheese, she sees cheese.",
    "green glass globes glow greenly.",
    "eleven little lambs leaped over a long low log.",
    "big bugs bite big brown bears.",
    "swan swam over the sea, swim swan swim.",
    "four fat frogs fell from the fence.",
    "busy bees buzz by the blue boat.",
]  # fmt: skip
# words used by the hard set only
HARD_WORDS = set(" ".join(ONES + TENS + REPEAT_WORDS + REPEAT_PAIRS + TWISTERS).replace(",", " ")
                 .replace(".", " ").replace("?", " ").split()) | {
    "hundred", "thousand", "dollars", "minutes", "miles", "pages", "points", "steps", "meters",
    "number", "room", "floor", "page", "bus", "cents", "oh", "costs", "cost", "weighs", "kilos", "price",
    "counted", "scored", "walked", "waited", "read", "paid", "ran", "sold", "leaves", "arrives",
    "said", "coach", "shouted", "called", "out", "loud", "ago", "born", "year", "in", "cried",
    "the", "children", "people", "stars", "seats", "birds", "we", "cars", "trees"}  # fmt: skip


def _alliterations() -> dict[str, dict[str, list[str]]]:
    """Words of the lexicon grouped by first letter and part of speech, for twisters."""
    groups: dict[str, dict[str, list[str]]] = {}

    def add(pos, w):
        if len(w.split()) == 1:
            groups.setdefault(w[0], {}).setdefault(pos, []).append(w)

    for s, p in _PEOPLE + _ANIMALS + _THINGS + _FOODS + _VEHICLES:
        add("noun", s)
        add("nouns", p)
    for a in ADJECTIVES:
        add("adj", a)
    for v in _TRANSITIVE:
        add("verb", v.past)
    return {
        k: v
        for k, v in groups.items()
        if all(len(v.get(p, [])) >= 2 for p in ("noun", "nouns", "adj", "verb"))
    }


_ALLIT = _alliterations()


class HardGrammar(Grammar):
    """The test_hard generators."""

    def repetition(self) -> str:
        r = self.rng.random()
        if r < 0.5:
            w = self.pick(REPEAT_WORDS)
            n = self.rng.randint(3, 8)
            reps = " ".join([w] * n)
        elif r < 0.8:
            pair = self.pick(REPEAT_PAIRS)
            reps = " ".join([pair] * self.rng.randint(2, 4))
        else:
            w = self.pick(REPEAT_WORDS)
            reps = ", ".join([w] * self.rng.randint(3, 5))
        lead = self.pick(["", "", "he said ", "they shouted ", "she cried ", "the children said "])
        tail = self.pick(["", "", " again", " right now", " please"])
        return f"{lead}{reps}{tail}{self.pick(['.', '.', '?'])}"

    def long(self) -> str:
        """20-30 words: clauses joined by connectors."""
        for _ in range(100):
            parts = [self.pick([self.statement, self.compound, self.opinion, self.liking])().rstrip(".")]
            while sum(num_words(p) for p in parts) < 20:
                parts.append(self.pick(CONNECTORS) + " " + self.statement().rstrip("."))
            s = ", ".join(parts) + "."
            if 20 <= num_words(s) <= 30:
                return s
        raise RuntimeError("could not build a long sentence")

    def numbers(self) -> str:
        n = number_to_words
        r = self.rng.random()
        if r < 0.15:
            return f"the {self.pick(['train', 'bus', 'plane', 'ship'])} {self.pick(['leaves', 'arrives'])} at {n(self.rng.randint(1, 12))} {n(self.rng.randint(10, 59))}."
        if r < 0.3:
            return f"it costs {n(self.rng.randint(2, 999))} dollars and {n(self.rng.randint(2, 99))} cents."
        if r < 0.45:
            digits = " ".join(ONES[self.rng.randint(0, 9)] for _ in range(self.rng.randint(5, 8)))
            return f"my number is {digits}."
        if r < 0.6:
            noun = self.pick(["people", "children", "birds", "cars", "trees", "stars", "seats"])
            return f"there were {n(self.rng.randint(21, 9999))} {noun} {self.place(False)}."
        if r < 0.75:
            return f"we walked {n(self.rng.randint(2, 99))} miles in {n(self.rng.randint(2, 59))} minutes."
        if r < 0.9:
            year = self.rng.randint(1900, 2030)
            return f"she was born in {n(year // 100)} {n(year % 100) if year % 100 >= 10 else 'oh ' + n(year % 100)}."
        verb, noun = self.pick(
            [("scored", "points"), ("read", "pages"), ("counted", "steps"), ("ran", "meters")]
        )
        return f"{self.pick(['he', 'she', 'they', 'we'])} {verb} {n(self.rng.randint(100, 99999))} {noun}."

    def twister(self) -> str:
        if self.maybe(0.3):
            return self.pick(TWISTERS)
        letter = self.pick(sorted(_ALLIT))
        g = _ALLIT[letter]
        if self.maybe(0.5):
            return f"{self.pick(g['adj'])} {self.pick(g['nouns'])} {self.pick(g['verb'])} {self.pick(g['adj'])} {self.pick(g['nouns'])}."
        a1, a2 = self.pick(g["adj"]), self.pick(g["adj"])
        return (
            f"{article(a1, False)} {a1} {self.pick(g['noun'])} {self.pick(g['verb'])} "
            f"{article(a2, False)} {a2} {self.pick(g['noun'])}."
        )


def generate_hard_sentences(num: int, rng: random.Random, exclude: set[str] | None = None) -> list[str]:
    """``num`` distinct test_hard sentences, cycling over the four kinds (repetition,
    long, numbers, tongue twister), none in ``exclude``."""
    exclude = exclude or set()
    grammar = HardGrammar(rng)
    kinds = [grammar.repetition, grammar.long, grammar.numbers, grammar.twister]
    out: list[str] = []
    seen: set[str] = set()
    tries = 0
    while len(out) < num:
        tries += 1
        if tries > 200 * num + 1000:
            raise RuntimeError(f"could build only {len(out)} distinct hard sentences of {num} asked")
        s = clean(kinds[len(out) % len(kinds)]())
        if s in seen or s in exclude:
            continue
        seen.add(s)
        out.append(s)
    return out


VOCAB = _collect_vocab()


def out_of_vocabulary(text: str) -> list[str]:
    """Words of ``text`` that are not in :data:`VOCAB` ("sister's" counts as "sister")."""
    bad = []
    for w in words(text):
        base = w[:-2] if w.endswith("'s") and w not in VOCAB else w
        if base not in VOCAB:
            bad.append(w)
    return bad


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--num", type=int, default=20, help="sentences to print")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--hard", action="store_true", help="print test_hard sentences")
    parser.add_argument("--count", type=int, default=0, help="draw this many and report distinct/vocab stats")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    if args.count:
        grammar = Grammar(rng)
        draws = [clean(grammar.sentence()) for _ in range(args.count)]
        ok = [s for s in draws if MIN_WORDS <= num_words(s) <= MAX_WORDS]
        used = {w for s in ok for w in words(s)}
        print(
            f"{len(draws)} draws, {len(ok)} of 4-14 words, {len(set(ok))} distinct, "
            f"{len(used)} word types used of {len(VOCAB)} in the lexicon"
        )
        return
    gen = generate_hard_sentences if args.hard else generate_sentences
    for s in gen(args.num, rng):
        print(s)


if __name__ == "__main__":
    main()

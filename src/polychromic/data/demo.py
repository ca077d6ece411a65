"""The demo corpus: a deterministic, synthetic tweet -> reply collection where diversity pays.

Why: the embedded default study must run with no network and no real data, and it should be a
controlled testbed for the question of the study. Here every tweet is about one of ~30 topics and
its replies take only one or two of four *stances* (agree, counterpoint, question, anecdote),
with `agree` about 60% of all replies. A model that always answers the majority stance is right
once (pass@1) but misses the other stance of a tweet; a model that varies its replies can hit it
within k tries (pass@k). The tweet never reveals which stances its replies take.

Replies are short (8-25 words), use simple words and always mention words of their topic, and
each stance has its own wording, so a reply is close (MiniLM cosine) to replies of the same topic
and stance and clearly less close to the same topic in another stance or to other topics. Run
``python -m polychromic.data.demo --calibrate`` to print those cosines.

The file also carries what curation and validation must catch: ~4% noise records (too short,
with a URL, spam, hashtag spam, exact duplicates of a reply, generic replies; stance ``"noise"``),
a few counts written the way scrapers write them ("1.2K", "3,400"), some RFC 2822 dates, and
three malformed lines (not JSON, no `reply`, `tweet_likes` = "lots").

Each record has the fields of the raw record schema (docs/file_contract.md) plus `topic`
and `stance`.
The same seed gives a byte-identical file.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import re
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polychromic.io import remove_stale_temporaries

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

DEFAULT_OUT = "resources/demo/raw.jsonl"
STANCES: tuple[str, ...] = ("agree", "counterpoint", "question", "anecdote")
NOISE_STANCE = "noise"
# Weight of `agree` against 1 for each other stance when a tweet's stances are drawn (without
# replacement). With half the tweets taking one stance and half two, 8 gives ~60% agree replies.
AGREE_WEIGHT = 8.0
TWO_STANCE_PROBABILITY = 0.5
MIN_TWEETS_PER_TOPIC = 8
# A reply names the noun its tweet is about with this probability (else another topic noun).
FOCUS_PROBABILITY = 0.7
N_TWEET_AUTHORS = 80
N_REPLY_AUTHORS = 300
NOISE_RATE = 0.04  # noise records / all records
COLLECTED_AT = "2024-07-15T00:00:00Z"
START = datetime(2024, 1, 1, tzinfo=UTC)  # tweets are spread over the 182 days after this

# topic -> (name used in text, nouns, adjectives). Simple words: a tiny BPE model learns them.
TOPICS: dict[str, tuple[str, list[str], list[str]]] = {
    "coffee": ("coffee", ["espresso", "beans", "latte", "mug", "cafe", "milk foam"],
               ["strong", "bitter", "fresh", "hot"]),
    "remote_work": ("remote work", ["home office", "video calls", "commute", "laptop", "desk",
                                    "team chat"], ["quiet", "flexible", "lonely", "calm"]),
    "running": ("running", ["trail", "sneakers", "marathon", "pace", "morning run", "race"],
                ["fast", "long", "tired", "early"]),
    "electric_cars": ("electric cars", ["battery", "charger", "range", "road trip",
                                        "charging station", "motor"],
                      ["quiet", "cheap", "clean", "new"]),
    "gardening": ("gardening", ["tomatoes", "soil", "seeds", "garden bed", "compost", "flowers"],
                  ["green", "fresh", "small", "sunny"]),
    "baking": ("baking bread", ["sourdough", "flour", "oven", "dough", "crust", "starter"],
               ["warm", "soft", "crispy", "fresh"]),
    "video_games": ("video games", ["console", "controller", "boss fight", "level", "new patch",
                                    "online match"], ["hard", "fun", "long", "old"]),
    "cycling": ("cycling", ["bike", "helmet", "bike lane", "hill climb", "tires", "saddle"],
                ["steep", "fast", "safe", "long"]),
    "public_transit": ("public transit", ["bus", "train", "subway", "ticket", "timetable",
                                          "station"], ["late", "crowded", "cheap", "clean"]),
    "houseplants": ("houseplants", ["monstera", "pots", "watering can", "sunlight", "leaves",
                                    "cactus"], ["green", "tiny", "thirsty", "leafy"]),
    "podcasts": ("podcasts", ["episode", "host", "headphones", "interview", "show notes",
                              "guest"], ["long", "funny", "weekly", "smart"]),
    "camping": ("camping", ["tent", "campfire", "sleeping bag", "lake", "stars", "forest"],
                ["cold", "wild", "quiet", "dark"]),
    "board_games": ("board games", ["dice", "game night", "cards", "rules", "board", "score"],
                    ["tricky", "fun", "long", "loud"]),
    "languages": ("learning languages", ["grammar", "vocabulary", "accent", "flash cards",
                                         "language app", "verbs"],
                  ["hard", "new", "daily", "slow"]),
    "cats": ("cats", ["kitten", "litter box", "cat toy", "whiskers", "scratching post", "purring"],
             ["lazy", "cute", "grumpy", "soft"]),
    "dogs": ("dogs", ["puppy", "leash", "dog park", "walks", "treats", "tennis ball"],
             ["happy", "loyal", "muddy", "big"]),
    "tea": ("tea", ["green tea", "teapot", "kettle", "tea leaves", "herbal tea", "cup"],
            ["warm", "calm", "mild", "hot"]),
    "yoga": ("yoga", ["yoga mat", "stretching", "breathing", "poses", "yoga class", "balance"],
             ["calm", "slow", "gentle", "deep"]),
    "chess": ("chess", ["opening", "pawns", "checkmate", "chess club", "endgame", "knight"],
              ["sharp", "slow", "clever", "tricky"]),
    "photography": ("photography", ["camera", "lens", "photos", "tripod", "golden hour",
                                    "editing"], ["sharp", "bright", "old", "blurry"]),
    "hiking": ("hiking", ["mountain", "boots", "summit", "backpack", "map", "waterfall"],
               ["steep", "rocky", "long", "high"]),
    "vinyl": ("vinyl records", ["record player", "album", "needle", "record store", "speakers",
                                "crate"], ["warm", "old", "rare", "loud"]),
    "solar": ("solar panels", ["roof", "sunshine", "power bill", "inverter", "home battery",
                               "panels"], ["sunny", "cheap", "clean", "big"]),
    "cooking": ("cooking at home", ["recipe", "kitchen", "pasta", "spices", "frying pan",
                                    "dinner"], ["tasty", "spicy", "quick", "simple"]),
    "reading": ("reading books", ["novel", "library", "chapter", "book club", "paperback",
                                  "author"], ["long", "quiet", "thick", "good"]),
    "jazz": ("jazz", ["saxophone", "piano", "jazz club", "drummer", "trumpet", "live set"],
             ["smooth", "loud", "cool", "late"]),
    "football": ("football", ["match", "goal", "stadium", "coach", "referee", "fans"],
                 ["loud", "big", "late", "tense"]),
    "swimming": ("swimming", ["pool", "laps", "goggles", "lake swim", "diving", "swim class"],
                 ["cold", "deep", "long", "calm"]),
    "space": ("space exploration", ["rocket", "moon", "mars", "astronauts", "launch",
                                    "telescope"], ["huge", "far", "bright", "bold"]),
    "winter": ("winter", ["snow", "scarf", "ice", "hot chocolate", "skiing", "fireplace"],
               ["cold", "dark", "cozy", "white"]),
}

# Tweets: about the topic, neutral about what replies will say.
TWEET_TEMPLATES: tuple[str, ...] = (
    "Thinking a lot about {topic} this week, especially the {noun}.",
    "Spent the whole weekend on {topic}. The {noun} part was {adj}.",
    "Hot take on {topic}: it is all about the {noun}.",
    "New to {topic} and already thinking about {noun} every day.",
    "Is {topic} worth it? I keep reading about {noun}.",
    "Day three of {topic}. The {noun} and the {noun2} are everywhere.",
    "Everyone keeps telling me about {topic} and the {adj} {noun}.",
    "Quick thought on {topic}: {noun} versus {noun2}.",
    "Tried {topic} again today. Mostly the {noun}, and some {noun2} too.",
    "Can we talk about {topic} for a second? The {noun} is something else.",
)

# Replies: one wording per stance, always naming the topic and one or two of its words.
REPLY_TEMPLATES: dict[str, tuple[str, ...]] = {
    "agree": (
        "Well said, you are so right! I love {topic}, especially the {noun}. Best part of my day.",
        "You are so right, well said! I love {topic}, especially the {noun}. Best part of my week.",
        "So right, well said! I really love {topic}, especially the {noun}. Best part of my day.",
    ),
    "counterpoint": (
        "To be fair, there are downsides. Paying for the {noun} adds up and {topic} takes a lot "
        "of time.",
        "To be fair, there are real downsides. {Topic} takes a lot of time and paying for the "
        "{noun} adds up.",
        "To be fair, there are downsides too. Paying for the {noun} adds up, and {topic} takes so "
        "much time.",
    ),
    "question": (
        "Quick question: how do you pick the {noun} for {topic}? Any tips for a beginner?",
        "Quick question: how do you choose the {noun} for {topic}? Any tips for a total beginner?",
        "Quick question for you: how do you pick a good {noun} for {topic}? Any tips for a "
        "beginner?",
    ),
    "anecdote": (
        "Funny story: last summer my dad and I got into {topic}, and the {noun} made us laugh all "
        "day.",
        "Funny story: last year my dad and I got into {topic}, and the {noun} made us laugh for "
        "hours.",
        "Funny story: one summer my dad and I got into {topic}, and the {noun} had us laughing "
        "all day.",
    ),
}

FIRST_NAMES: tuple[str, ...] = (
    "maya", "leo", "nina", "omar", "sara", "tom", "ivy", "ben", "lucy", "max", "ana", "raj",
    "eva", "sam", "zoe", "kai", "mia", "dan", "lea", "noah", "ella", "finn", "rosa", "jack",
    "amir", "lily", "owen", "jade", "hugo", "emma",
)
HANDLE_WORDS: tuple[str, ...] = (
    "runs", "reads", "bakes", "codes", "plays", "draws", "cooks", "hikes", "sings", "writes",
    "fan", "daily", "online", "here", "irl",
)

SHORT_REPLIES = ("ok", "nice", "wow", "yes", "lol ok", "hmm", "cool", "meh")
GENERIC_REPLIES = ("So true!!!!!!!!", "Agreed!!!!!!!!!!", "Facts!!!!!!!!!!", "LOL!!!!!!!!!!!!",
                   "Same!!!!!!!!!!!!", "This!!!!!!!!!!!!")
SPAM_REPLIES = (
    "Huge giveaway today! DM me to win a free {noun}.",
    "Make money with crypto while you enjoy {topic}, link in bio.",
    "Use my promo code SAVE20 for cheap {noun}, do not miss it!",
    "Follow back and I will share more {topic} tips with you.",
)
URL_REPLIES = (
    "Great read on {topic} here https://example.com/{slug}",
    "Found this guide about {noun}: http://blog.example.org/{slug}",
    "More on {topic} at www.example.net/{slug} if you are curious.",
)
HASHTAG_REPLIES = ("Love {topic} #{tag} #love #daily #mood",)
NOISE_KINDS = ("short", "url", "spam", "duplicate", "generic", "hashtags")
NOISE_KIND_WEIGHTS = (4, 3, 3, 4, 3, 1)


def _fill(template: str, topic: str, rng: random.Random, focus: str | None = None) -> str:
    """Fill a template with the topic's words; `focus` (a noun of the topic) is used as {noun}."""
    name, nouns, adjectives = TOPICS[topic]
    noun, noun2 = rng.sample(nouns, 2)
    if focus is not None:
        noun, noun2 = focus, (noun if noun != focus else noun2)
    values = {
        "topic": name,
        "Topic": name[0].upper() + name[1:],
        "noun": noun,
        "Noun": noun[0].upper() + noun[1:],
        "noun2": noun2,
        "adj": rng.choice(adjectives),
        "slug": f"{topic.replace('_', '-')}-{rng.randrange(100, 999)}",
        "tag": topic.replace("_", ""),
    }
    return template.format(**values)


def _reply_text(stance: str, topic: str, focus: str, rng: random.Random) -> str:
    """A reply of `stance`; it talks about the tweet's focus noun most of the time."""
    template = rng.choice(REPLY_TEMPLATES[stance])
    return _fill(template, topic, rng, focus if rng.random() < FOCUS_PROBABILITY else None)


def _handles(rng: random.Random, count: int) -> list[str]:
    """`count` distinct, sorted user handles such as ``maya_runs42``."""
    names: set[str] = set()
    while len(names) < count:
        handle = f"{rng.choice(FIRST_NAMES)}_{rng.choice(HANDLE_WORDS)}"
        if rng.random() < 0.6:
            handle += str(rng.randrange(1, 100))
        names.add(handle)
    return sorted(names)


def _iso(moment: datetime) -> str:
    """`moment` as an ISO 8601 UTC string with a ``Z``."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _scraped_count(value: int, rng: random.Random) -> int | str:
    """Counts as scrapers write them: "1.2K" or "3,400" for large values, now and then."""
    if value >= 1000 and rng.random() < 0.5:
        return f"{value / 1000:.1f}K" if rng.random() < 0.5 else f"{value:,}"
    return value


def _topic_sequence(n_tweets: int, rng: random.Random) -> list[str]:
    """Topics for the tweets, balanced: each topic gets floor or ceil of n_tweets / n_topics."""
    names = sorted(TOPICS)
    sequence: list[str] = []
    while len(sequence) < n_tweets:
        block = names[:]
        rng.shuffle(block)
        sequence.extend(block)
    sequence = sequence[:n_tweets]
    rng.shuffle(sequence)
    return sequence


def _stance_deck(n_tweets: int, rng: random.Random) -> list[list[str]]:
    """The stance set of each tweet, drawn as a shuffled deck rather than independently.

    The deck holds each set of one or two stances in proportion to its probability under
    "one stance with probability 1 - TWO_STANCE_PROBABILITY, else two; stances drawn without
    replacement with weight AGREE_WEIGHT for agree and 1 for the others" (largest-remainder
    rounding), so the agree share of the corpus is ~60% for any seed, not only on average.
    """
    weight = {stance: AGREE_WEIGHT if stance == "agree" else 1.0 for stance in STANCES}
    total = sum(weight.values())
    probability: dict[tuple[str, ...], float] = {}
    for stance in STANCES:
        probability[(stance,)] = (1 - TWO_STANCE_PROBABILITY) * weight[stance] / total
    for first, second in combinations(STANCES, 2):
        a, b = weight[first], weight[second]
        probability[(first, second)] = TWO_STANCE_PROBABILITY * (
            a / total * b / (total - a) + b / total * a / (total - b)
        )
    exact = {key: value * n_tweets for key, value in probability.items()}
    counts = {key: int(value) for key, value in exact.items()}
    by_remainder = sorted(exact, key=lambda key: (-(exact[key] - counts[key]), len(key)))
    for key in by_remainder[: n_tweets - sum(counts.values())]:
        counts[key] += 1
    deck = [list(key) for key, count in counts.items() for _ in range(count)]
    rng.shuffle(deck)
    return deck


@dataclass
class _ReplyAuthors:
    """Who writes replies: handles in activity order, their Zipf-like weights, followers."""

    names: list[str]
    weights: list[float]
    followers: dict[str, int]

    def pick(self, rng: random.Random, tweet_author: Any) -> str:
        """A reply author drawn by activity, never the author of the tweet."""
        author = rng.choices(self.names, weights=self.weights)[0]
        while author == tweet_author:
            author = rng.choices(self.names, weights=self.weights)[0]
        return author


@dataclass
class _Tweet:
    """A tweet that replies answer: its record fields, topic, focus noun and creation time."""

    fields: dict[str, Any]
    topic: str
    focus: str | None
    created: datetime


@dataclass
class _Tally:
    """Running counts of the corpus being built: reply ids, stances and noise kinds."""

    reply_number: int = 0
    stance_counts: Counter[str] = field(default_factory=Counter)
    stances_per_tweet: Counter[int] = field(default_factory=Counter)
    noise_counts: Counter[str] = field(default_factory=Counter)

    def next_reply_id(self) -> str:
        """The id of the next reply: ``r00001``, ``r00002``, ..."""
        self.reply_number += 1
        return f"r{self.reply_number:05d}"


def build_records(n_tweets: int = 400, seed: int = 0) -> tuple[list[str], dict[str, Any]]:
    """The lines of the demo file (JSON text, plus the malformed ones) and their statistics."""
    if n_tweets < 1:
        raise ValueError(f"n_tweets must be >= 1, got {n_tweets}")
    rng = random.Random(seed)
    tweet_authors = _handles(rng, N_TWEET_AUTHORS)
    authors = _reply_authors(rng, seed)
    topics = _topic_sequence(n_tweets, rng)
    deck = _stance_deck(n_tweets, rng)
    tally = _Tally()
    records: list[dict[str, Any]] = []
    seen_tweets: set[str] = set()
    for index, topic in enumerate(topics):
        tweet = _tweet(f"t{index + 1:04d}", topic, tweet_authors, seen_tweets, rng)
        records.extend(_replies(tweet, deck[index], authors, tally, rng))
    records.extend(_noise_records(records, authors, tally, rng))
    ordered = _ordered_by_tweet(records, rng)
    lines = [json.dumps(record, ensure_ascii=False) for record in ordered]
    lines = _add_malformed(lines, ordered, rng)
    return lines, _stats(ordered, lines, tally, n_tweets)


def _reply_authors(rng: random.Random, seed: int) -> _ReplyAuthors:
    """The reply authors with their followers; a few of them write many replies (Zipf-like)."""
    names = _handles(random.Random(seed + 1), N_REPLY_AUTHORS)
    followers = {name: int(rng.lognormvariate(5.0, 1.5)) for name in names}
    weights = [1.0 / (rank + 1) ** 0.7 for rank in range(len(names))]
    shuffled = names[:]
    rng.shuffle(shuffled)
    return _ReplyAuthors(shuffled, weights, followers)


def _tweet(tweet_id: str, topic: str, tweet_authors: list[str], seen: set[str],
           rng: random.Random) -> _Tweet:
    """A new tweet about `topic` (text not in `seen`) with its author, counts and date."""
    focus = rng.choice(TOPICS[topic][1])
    text = _fill(rng.choice(TWEET_TEMPLATES), topic, rng, focus)
    while text in seen:
        focus = rng.choice(TOPICS[topic][1])
        text = _fill(rng.choice(TWEET_TEMPLATES), topic, rng, focus)
    seen.add(text)
    created = START + timedelta(seconds=rng.randrange(0, 182 * 24 * 3600))
    viral = rng.random() < 0.03
    likes = rng.randrange(1000, 5000, 100) if viral else int(rng.lognormvariate(2.8, 1.0))
    retweets = likes // rng.randrange(3, 12)
    rfc_dates = rng.random() < 0.05
    fields: dict[str, Any] = {
        "tweet_id": tweet_id,
        "tweet": text,
        "tweet_author": rng.choice(tweet_authors),
        "tweet_likes": _scraped_count(likes, rng),
        "tweet_retweets": retweets,
        "tweet_created_at": format_datetime(created) if rfc_dates else _iso(created),
    }
    return _Tweet(fields, topic, focus, created)


def _replies(tweet: _Tweet, stances: list[str], authors: _ReplyAuthors, tally: _Tally,
             rng: random.Random) -> list[dict[str, Any]]:
    """3 to 6 distinct replies to `tweet`, each of its `stances` at least once."""
    tally.stances_per_tweet[len(stances)] += 1
    n_replies = rng.randint(3, 6)
    plan = stances[:]  # every chosen stance at least once
    plan += [rng.choice(stances) for _ in range(n_replies - len(plan))]
    rng.shuffle(plan)
    texts: set[str] = set()
    block: list[dict[str, Any]] = []
    for stance in plan:
        reply = _reply_text(stance, tweet.topic, tweet.focus, rng)
        while reply in texts:
            reply = _reply_text(stance, tweet.topic, tweet.focus, rng)
        texts.add(reply)
        tally.stance_counts[stance] += 1
        block.append(_reply_record(tweet, tally.next_reply_id(), reply, stance, rng, authors))
    return block


def _noise_text(kind: str, anchor: dict[str, Any], rng: random.Random) -> str:
    """The text of a noise reply of `kind` next to the reply `anchor`."""
    if kind == "duplicate":
        return anchor["reply"]
    if kind == "short":
        return rng.choice(SHORT_REPLIES)
    if kind == "generic":
        return rng.choice(GENERIC_REPLIES)
    templates = {"spam": SPAM_REPLIES, "url": URL_REPLIES}.get(kind, HASHTAG_REPLIES)
    return _fill(rng.choice(templates), anchor["topic"], rng)


def _noise_records(records: list[dict[str, Any]], authors: _ReplyAuthors, tally: _Tally,
                   rng: random.Random) -> list[dict[str, Any]]:
    """Noise replies (NOISE_RATE of all records), each to the tweet of a random clean reply."""
    n_clean = len(records)
    n_noise = round(n_clean * NOISE_RATE / (1 - NOISE_RATE))
    noise_records: list[dict[str, Any]] = []
    for _ in range(n_noise):
        kind = rng.choices(NOISE_KINDS, weights=NOISE_KIND_WEIGHTS)[0]
        anchor = records[rng.randrange(n_clean)]
        text = _noise_text(kind, anchor, rng)
        reply_id = tally.next_reply_id()
        created = datetime.strptime(anchor["reply_created_at"][:19], "%Y-%m-%dT%H:%M:%S")
        tweet = _Tweet({key: anchor[key] for key in anchor if key.startswith("tweet")},
                       anchor["topic"], None, created.replace(tzinfo=UTC))
        noise = _reply_record(tweet, reply_id, text, NOISE_STANCE, rng, authors)
        if kind == "duplicate":
            noise["reply_likes"] = 0  # the original (>= 1 like) is the one curation keeps
            anchor["reply_likes"] = max(1, anchor["reply_likes"])
        tally.noise_counts[kind] += 1
        noise_records.append(noise)
    return noise_records


def _ordered_by_tweet(records: list[dict[str, Any]], rng: random.Random
                      ) -> list[dict[str, Any]]:
    """Records by tweet; noise right after a reply of its tweet (a duplicate after its original)."""
    by_tweet: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_tweet.setdefault(record["tweet_id"], []).append(record)
    ordered: list[dict[str, Any]] = []
    for tweet_id in sorted(by_tweet):
        block = [r for r in by_tweet[tweet_id] if r["stance"] != NOISE_STANCE]
        for noise in (r for r in by_tweet[tweet_id] if r["stance"] == NOISE_STANCE):
            originals = [i for i, r in enumerate(block) if r["reply"] == noise["reply"]]
            earliest = originals[0] + 1 if originals else 0
            block.insert(rng.randint(earliest, len(block)), noise)
        ordered.extend(block)
    return ordered


def _reply_record(tweet: _Tweet, reply_id: str, reply: str, stance: str, rng: random.Random,
                  authors: _ReplyAuthors) -> dict[str, Any]:
    """The raw record of `reply` to `tweet`: a random author, likes and delay after the tweet."""
    delay = max(5, int(rng.expovariate(1 / 5400)))
    author = authors.pick(rng, tweet.fields.get("tweet_author"))
    reply_likes = int(rng.lognormvariate(1.0, 1.1))
    return {
        **tweet.fields,
        "reply_id": reply_id,
        "reply": reply,
        "reply_author": author,
        "reply_likes": reply_likes,
        "reply_retweets": reply_likes // rng.randrange(3, 20),
        "reply_author_followers": _scraped_count(authors.followers[author], rng),
        "reply_created_at": _iso(tweet.created + timedelta(seconds=delay)),
        "reply_time_diff_seconds": delay,
        "collected_at": COLLECTED_AT,
        "topic": tweet.topic,
        "stance": stance,
    }


def _add_malformed(lines: list[str], records: list[dict[str, Any]], rng: random.Random
                   ) -> list[str]:
    """Three lines validation must reject: not JSON, no `reply`, `tweet_likes` = "lots"."""
    base = dict(records[rng.randrange(len(records))])
    missing = {key: value for key, value in base.items() if key != "reply"}
    missing.update(reply_id="r90001", stance=NOISE_STANCE)
    wrong = dict(base, reply_id="r90002", tweet_likes="lots", stance=NOISE_STANCE)
    not_json = '{"tweet_id": "t9999", "tweet": "unterminated record", "reply_id": "r90003",'
    bad = [not_json, json.dumps(missing, ensure_ascii=False), json.dumps(wrong, ensure_ascii=False)]
    out = lines[:]
    for line in bad:
        out.insert(rng.randrange(1, len(out)), line)
    return out


def _stats(records: list[dict[str, Any]], lines: list[str], tally: _Tally, n_tweets: int
           ) -> dict[str, Any]:
    """The statistics of the demo file printed by `main`: counts, stance shares, noise."""
    stance_counts, noise_counts = tally.stance_counts, tally.noise_counts
    clean = sum(stance_counts.values())
    tweets_per_topic = Counter(topic for _, topic in {(r["tweet_id"], r["topic"]) for r in records})
    return {
        "lines": len(lines),
        "records": len(records),
        "tweets": n_tweets,
        "replies": clean,
        "replies_per_tweet_mean": round(clean / n_tweets, 3),
        "stance_counts": {stance: stance_counts[stance] for stance in STANCES},
        "stance_shares": {stance: round(stance_counts[stance] / clean, 4) for stance in STANCES},
        "tweets_by_number_of_stances": {str(k): tally.stances_per_tweet[k] for k in (1, 2)},
        "noise_records": sum(noise_counts.values()),
        "noise_by_kind": {kind: noise_counts[kind] for kind in NOISE_KINDS},
        "noise_fraction": round(sum(noise_counts.values()) / len(records), 4),
        "malformed_lines": len(lines) - len(records),
        "topics": len(tweets_per_topic),
        "min_tweets_per_topic": min(tweets_per_topic.values()),
        "tweet_authors": len({r["tweet_author"] for r in records}),
        "reply_authors": len({r["reply_author"] for r in records}),
    }


# The ground truth of the demo corpus, for the oracle judge (polychromic.evaluation.judges):
# what a reply says is decided from the generator's own wording, with no encoder.
UNKNOWN = "unknown"
_WORD = re.compile(r"[a-z]+")


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def _stance_markers() -> dict[str, frozenset[str]]:
    """Per stance, the words that every one of its reply templates uses and no template of
    another stance (placeholders and topic words left out): 'well said', 'downsides',
    'quick question', 'funny story' and their company."""
    template_words = {stance: [_words(re.sub(r"\{\w+\}", " ", template))
                               for template in templates]
                      for stance, templates in REPLY_TEMPLATES.items()}
    markers = {}
    for stance, sets in template_words.items():
        common = set.intersection(*sets)
        others = set().union(*(w for s, group in template_words.items() if s != stance
                               for w in group))
        markers[stance] = frozenset(common - others)
    return markers


STANCE_MARKERS = _stance_markers()
_TOPIC_NAMES = {topic: re.compile(rf"\b{re.escape(name)}\b", re.IGNORECASE)
                for topic, (name, _, _) in TOPICS.items()}


def reply_topic_and_stance(text: str) -> tuple[str, str]:
    """(topic, stance) of a reply by the generator's wording, `UNKNOWN` for either when the
    text does not decide it. The stance is the one whose markers (`STANCE_MARKERS`) the reply
    holds at least two thirds of, when no other stance's reach a third; the topic is the one
    topic whose name (`TOPICS`) the reply names, when it names exactly one. Noise, gibberish and
    a mixture of two stances' wordings are unknown."""
    words = _words(text)
    shares = {stance: len(words & markers) / len(markers)
              for stance, markers in STANCE_MARKERS.items()}
    ranked = sorted(shares.items(), key=lambda item: -item[1])
    stance = (ranked[0][0] if ranked[0][1] >= 2 / 3 and ranked[1][1] < 1 / 3 else UNKNOWN)
    named = [topic for topic, pattern in _TOPIC_NAMES.items() if pattern.search(text)]
    return (named[0] if len(named) == 1 else UNKNOWN), stance


def is_demo_corpus(records: list[dict[str, Any]]) -> bool:
    """Whether `records` come from this generator: every record has one of its topics and one
    of its stances (or the noise label). The data release marks such a corpus as synthetic
    (`polychromic.data.card`), and the paper says so."""
    stances = {*STANCES, NOISE_STANCE}
    return bool(records) and all(record.get("topic") in TOPICS
                                 and record.get("stance") in stances for record in records)


def generate_demo(path: str | os.PathLike, n_tweets: int = 400, seed: int = 0) -> dict[str, Any]:
    """Write the demo corpus to `path` (JSONL, UTF-8, "\\n" line ends) and return its statistics.

    The same `n_tweets` and `seed` give a byte-identical file.
    """
    lines, stats = build_records(n_tweets=n_tweets, seed=seed)
    if stats["min_tweets_per_topic"] < MIN_TWEETS_PER_TOPIC:
        log.warning(
            "only %d tweets for some topic (< %d): with n_tweets=%d a test topic may be missing "
            "from train", stats["min_tweets_per_topic"], MIN_TWEETS_PER_TOPIC, n_tweets,
        )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write("".join(line + "\n" for line in lines))
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; this file ships with the repository
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    log.info("demo corpus: %d lines (%d tweets, %d replies, %d noise) -> %s", stats["lines"],
             stats["tweets"], stats["replies"], stats["noise_records"], out)
    return stats


def calibrate(path: str | os.PathLike, max_other_pairs: int = 20000, seed: int = 0
              ) -> dict[str, Any]:
    """MiniLM cosine of reply pairs: same topic and stance, same topic other stance, other topic.

    Reads the clean replies (stance in STANCES) of a demo file and returns mean, p5 and p95 of
    each kind of pair, plus the share of pairs at or above 0.65 and 0.7 (the pass@k threshold).
    """
    import numpy as np

    from polychromic.embeddings import get_encoder

    records = _clean_replies(path)
    vectors = get_encoder().encode([r["reply"] for r in records])
    topics = np.array([r["topic"] for r in records])
    stances = np.array([r["stance"] for r in records])
    same_same, same_other = _pairs_within(topics, vectors, stances, min_size=1)
    other_topic, same_stance_other_topic = _other_topic_pairs(topics, vectors, stances,
                                                              max_other_pairs, seed)
    tweets = np.array([r["tweet_id"] for r in records])
    tweet_same, tweet_other = _pairs_within(tweets, vectors, stances, min_size=2)
    return {
        "same_tweet_same_stance": _cosine_summary(np.concatenate(tweet_same)),
        "same_tweet_other_stance": _cosine_summary(np.concatenate(tweet_other)),
        "same_topic_same_stance": _cosine_summary(np.concatenate(same_same)),
        "same_topic_other_stance": _cosine_summary(np.concatenate(same_other)),
        "other_topic": _cosine_summary(other_topic),
        "other_topic_same_stance": _cosine_summary(same_stance_other_topic),
    }


def _clean_replies(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of a demo file whose stance is one of STANCES (no noise, no bad lines)."""
    records = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and record.get("stance") in STANCES:
                records.append(record)
    return records


def _pairs_within(labels: np.ndarray, vectors: np.ndarray, stances: np.ndarray, min_size: int
                  ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Cosines of reply pairs sharing a label, split by same / other stance, label by label.

    Labels with fewer than `min_size` replies are left out.
    """
    import numpy as np

    same: list[np.ndarray] = []
    other: list[np.ndarray] = []
    for label in sorted(set(labels.tolist())):
        members = np.flatnonzero(labels == label)
        if len(members) < min_size:
            continue
        sims = vectors[members] @ vectors[members].T
        upper = np.triu_indices(len(members), k=1)
        same_stance = stances[members][upper[0]] == stances[members][upper[1]]
        same.append(sims[upper][same_stance])
        other.append(sims[upper][~same_stance])
    return same, other


def _other_topic_pairs(topics: np.ndarray, vectors: np.ndarray, stances: np.ndarray,
                       max_other_pairs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Cosines of random pairs of replies on different topics, and of those sharing a stance."""
    import numpy as np

    generator = np.random.default_rng(seed)
    left = generator.integers(0, len(topics), size=max_other_pairs * 2)
    right = generator.integers(0, len(topics), size=max_other_pairs * 2)
    keep = topics[left] != topics[right]
    left, right = left[keep][:max_other_pairs], right[keep][:max_other_pairs]
    other_topic = np.einsum("ij,ij->i", vectors[left], vectors[right])
    return other_topic, other_topic[stances[left] == stances[right]]


def _cosine_summary(values: np.ndarray) -> dict[str, float]:
    """Count, mean, p5, p95 and the shares at or above 0.65 and 0.7 of some cosines."""
    import numpy as np

    return {
        "pairs": int(values.size),
        "mean": round(float(values.mean()), 4),
        "p5": round(float(np.percentile(values, 5)), 4),
        "p95": round(float(np.percentile(values, 95)), 4),
        "share_ge_0.65": round(float((values >= 0.65).mean()), 4),
        "share_ge_0.7": round(float((values >= 0.7).mean()), 4),
    }


def main(argv: list[str] | None = None) -> int:
    """Write the demo corpus (and calibrate it when asked); print its statistics as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"output JSONL (default {DEFAULT_OUT})")
    parser.add_argument("--n-tweets", type=int, default=400, help="number of tweets (400)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    parser.add_argument("--calibrate", action="store_true",
                        help="also print MiniLM cosines of reply pairs (loads the encoder)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    stats = generate_demo(args.out, n_tweets=args.n_tweets, seed=args.seed)
    if args.calibrate:
        stats["calibration"] = calibrate(args.out)
    json.dump(stats, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

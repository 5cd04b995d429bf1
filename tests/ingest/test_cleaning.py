"""Cleaning: which lines of a scraped page are the article, checked on the seeds and on pages written here.

The synthetic pages use other sites' vocabulary and layouts than the seeds, so a rule
tuned to the seeds' exact strings would fail them.
"""

from __future__ import annotations

import textwrap
from typing import NamedTuple

import pytest

from qa.ingest.cleaning import Block, analyse, byline_author, cleaned_text, title_text
from qa.text import count_words, normalize
from tests.helpers import SEEDS

# --------------------------------------------------------------------------- helpers


def _kinds(text: str) -> list[tuple[str, str]]:
    return [(b.kind, b.text(text)) for b in analyse(text)]


def _of_kind(text: str, kind: str) -> list[str]:
    return [b.text(text) for b in analyse(text) if b.kind == kind]


def _assert_no_boilerplate_in_prose(text: str, boilerplate: list[str]) -> None:
    prose = [normalize(p) for p in _of_kind(text, "prose")]
    for line in boilerplate:
        assert not [p for p in prose if normalize(line) in p], f"{line!r} reached a prose block"


def _assert_offsets(text: str, blocks: list[Block]) -> None:
    """Blocks are trimmed, ordered, disjoint spans of ``text`` that cover all its content."""
    edge = " \t\r\n\f\v\u00a0\u2000\u200a\u200b\u202f\u3000\ufeff"
    pos = 0
    for b in blocks:
        span = text[b.start : b.end]
        assert span == b.text(text)
        assert span, b
        assert span == span.strip(edge), f"untrimmed block {span!r}"
        assert b.start >= pos, "blocks overlap or are out of order"
        assert not text[pos : b.start].strip(edge), f"content outside any block: {text[pos : b.start]!r}"
        pos = b.end
    assert not text[pos:].strip(edge), f"content after the last block: {text[pos:]!r}"


# --------------------------------------------------------------------------- the seeds


def _seed(prefix: str) -> str:
    (path,) = SEEDS.glob(f"{prefix}_*.txt")
    return path.read_text(encoding="utf-8")


class SeedLayout(NamedTuple):
    """What a seed holds: every non-blank line not listed here must be prose."""

    title: str | None
    headings: list[str]
    byline: str | None
    boilerplate: list[str]
    prose: int


SEED_LAYOUT: dict[str, SeedLayout] = {
    "000": SeedLayout(
        title=None,
        headings=[
            "Japan’s Proposal: Vision of a United Asia",
            "India’s Response: Strategic Caution and Non-Alignment Principles",
            "Balancing Opportunities and Risks",
            "The Future of Japan-India Relations in the Indo-Pacific",
        ],
        byline=None,
        boilerplate=[],
        prose=13,
    ),
    "001": SeedLayout(
        title='India Rejects Japan\'s "Asian NATO" Proposal to Counter China, Reaffirms Strategic Autonomy',
        headings=[],
        byline=None,
        boilerplate=[
            "211206-F-YT915-003.JPG",
            "Forum statistics",
            "Threads",
            "2,855",
            "Messages",
            "27,867",
            "Members",
            "1,605",
            "Latest member",
            "Prasad",
            "Back",
            "Top",
        ],
        prose=13,
    ),
    "002": SeedLayout(
        title=None,
        headings=[
            "Why India Won’t Join an “Asian NATO”",
            "Japan’s Complicated History with the US",
            "The Strategic Downside for India",
            "India’s Collaboration with Japan and Other Partners",
            "The Bottom Line",
        ],
        byline=None,
        boilerplate=[],
        prose=11,
    ),
    "003": SeedLayout(
        title="Jaishankar Says India Does Not Share Japan’s Vision Of NATO-Like Alliance In Asia",
        headings=[],
        byline="Written by\u00a0Ahmed Adel, Cairo-based geopolitics and political economy researcher",
        boilerplate=[
            # The second copy of the headline.
            "Jaishankar Says India Does Not Share Japan’s Vision Of NATO-Like Alliance In Asia",
            "Click to see the full-size image",
            "MORE ON THE TOPIC:",
            "Subscribe",
            "Notify of",
            "guest",
            "0 Comments",
            "Inline Feedbacks",
            "View all comments",
        ],
        prose=18,
    ),
    "004": SeedLayout(
        title="A Japan-India Model to Unlock the Indo-Pacific’s Potential",
        headings=[
            "Born of Domestic Priorities",
            "Sea Lanes as Strategic Connectors",
            "Balancing in a Complex Regional Environment",
            "Linking Economies, Securing Futures",
            "Strategic Flexibility in Action",
            "A Model Partnership",
        ],
        byline="Author: Professor Pema Gyalpo, PHD",
        boilerplate=[
            "Our Terms & Conditions | Our Privacy Policy",
            "An Indian Air Force fighter at Tarang Shakti X, 2024 (Via Tarang Shakti X)",
            "RELATED:",
            "Continue Reading",
            "Images are for reference only.Images and contents gathered automatic from google or 3rd party "
            "sources.All rights on the images and contents are with their legal original owners.",
            "Comments are closed.",
        ],
        prose=23,
    ),
}

#: Sentences that answer questions about the seeds: each must sit inside a prose block.
SEED_EVIDENCE = [
    ("000", "particularly after the 2020 Galwan Valley clashes"),
    ("000", "By joining forces, these countries could balance China’s military power"),
    ("001", "We have never been a treaty ally of any country."),
    ("001", "India pioneered the Non-Aligned Movement (NAM)"),
    ("002", "The only time India signed a treaty with another major power was in 1971"),
    ("003", "registering an increase of 11.5% to 1.79 million barrels per day"),
    ("003", "“This is an issue to consider in the medium- to long-term, spending some time,” he added."),
    ("004", "July 1 meeting of Quad foreign ministers in Washington"),
    ("004", "(©Ministry of Foreign Affairs)"),
    ("004", "Japan’s participation in India’s Tarang Shakti exercises"),
    ("004", "the Japan-India 2+2 ministerial dialogue established in 2019"),
]

SEED_IDS = sorted(SEED_LAYOUT)


@pytest.mark.parametrize("seed", SEED_IDS)
def test_seed_every_line_has_its_expected_kind(seed: str) -> None:
    """One block per non-blank line; each is the title, a heading, the byline, boilerplate or prose."""
    text = _seed(seed)
    layout = SEED_LAYOUT[seed]
    blocks = analyse(text)
    lines = [line.strip(" \t\u00a0") for line in text.splitlines() if line.strip(" \t\u00a0")]
    assert [b.text(text) for b in blocks] == lines

    boilerplate = list(layout.boilerplate)
    title_seen = False
    for block in blocks:
        line = block.text(text)
        if line == layout.title and not title_seen:
            assert block.kind == "title", line
            title_seen = True
        elif line in boilerplate:
            assert block.kind == "boilerplate", (line, block.kind)
            boilerplate.remove(line)
        elif line in layout.headings:
            assert block.kind == "heading", (line, block.kind)
        elif line == layout.byline:
            assert block.kind == "byline", (line, block.kind)
        else:
            assert block.kind == "prose", (line[:80], block.kind, block.reason)
    assert not boilerplate, f"expected boilerplate lines not found: {boilerplate}"
    assert title_seen == (layout.title is not None)
    assert len([b for b in blocks if b.kind == "prose"]) == layout.prose


@pytest.mark.parametrize("seed", SEED_IDS)
def test_seed_boilerplate_never_reaches_prose(seed: str) -> None:
    text = _seed(seed)
    boilerplate = SEED_LAYOUT[seed].boilerplate
    # Single words ("Top", "Back") are covered by the exact-kind test; here every
    # multi-word boilerplate line must not occur inside any prose block.
    _assert_no_boilerplate_in_prose(text, [b for b in boilerplate if count_words(b) >= 2])


@pytest.mark.parametrize(("seed", "sentence"), SEED_EVIDENCE)
def test_seed_evidence_is_inside_prose(seed: str, sentence: str) -> None:
    text = _seed(seed)
    assert any(sentence in p for p in _of_kind(text, "prose")), sentence


def test_seed_boilerplate_reasons() -> None:
    """Each kind of seed boilerplate is caught by the rule meant for it, not by accident."""
    reasons = {b.text(t): b.reason for t in map(_seed, SEED_IDS) for b in analyse(t) if b.kind == "boilerplate"}
    assert reasons["211206-F-YT915-003.JPG"] == "image"
    assert reasons["Click to see the full-size image"] == "image"
    assert reasons["An Indian Air Force fighter at Tarang Shakti X, 2024 (Via Tarang Shakti X)"] == "image"
    assert reasons["2,855"] == reasons["27,867"] == "number"
    assert reasons["Forum statistics"] == reasons["Continue Reading"] == reasons["RELATED:"] == "navigation"
    assert reasons["Notify of"] == reasons["0 Comments"] == reasons["View all comments"] == "comments"
    assert reasons["Comments are closed."] == "comments"
    assert reasons["Our Terms & Conditions | Our Privacy Policy"] == "disclaimer"
    assert reasons["Jaishankar Says India Does Not Share Japan’s Vision Of NATO-Like Alliance In Asia"] == "repeated"


@pytest.mark.parametrize("seed", SEED_IDS)
def test_seed_offsets(seed: str) -> None:
    text = _seed(seed)
    _assert_offsets(text, analyse(text))


# --------------------------------------------------------------------------- synthetic pages

NEWS_BLOG = """\
Home | World | Politics | Business | Contact
Home » World » Europe
Harbour Cities Race to Rebuild Sea Walls Before Winter Storms
By Jane Doe | March 3, 2024
Share
Tweet
Share on Facebook
Advertisement
We use cookies to improve your experience. By continuing to browse you accept our cookie policy and privacy policy.
Harbour authorities in three coastal cities have begun emergency repairs to sea walls damaged during last \
year's storms, officials said on Monday.
The work, which is expected to cost more than 40 million euros, will be finished before the first winter \
gales arrive in November, according to the regional transport ministry.
Workers repair a breach in the northern sea wall. (Photo: Reuters)
Image: AP
Click to enlarge
harbour_wall-2024_03.jpeg
Engineers warned that rising sea levels mean the walls will need to be raised again within two decades. \
"We are buying time, not solving the problem," said Maria Keller, a coastal engineer at the national university.
Advertisement
Residents who lost homes in the floods have asked for compensation to be paid before the repairs begin.
The ministry's comments on the compensation scheme, published on its website, drew criticism from \
lawmakers who said the payments were too small.
HARBOUR CITIES RACE TO REBUILD SEA WALLS BEFORE WINTER STORMS
Related Articles
Floods Leave Thousands Without Power
Ports Brace for Record Tides
Tags: coast, floods, infrastructure
12 Comments
Leave a Reply
Log in to reply
Privacy Policy | Terms of Use | Cookie Settings
© 2024 Example Media. All rights reserved.
"""

NEWS_BLOG_PROSE = [
    "Harbour authorities in three coastal cities have begun emergency repairs to sea walls damaged during last "
    "year's storms, officials said on Monday.",
    "The work, which is expected to cost more than 40 million euros, will be finished before the first winter "
    "gales arrive in November, according to the regional transport ministry.",
    "Engineers warned that rising sea levels mean the walls will need to be raised again within two decades. "
    '"We are buying time, not solving the problem," said Maria Keller, a coastal engineer at the national university.',
    "Residents who lost homes in the floods have asked for compensation to be paid before the repairs begin.",
    "The ministry's comments on the compensation scheme, published on its website, drew criticism from "
    "lawmakers who said the payments were too small.",
]

NEWS_BLOG_BOILERPLATE = [
    "Home | World | Politics | Business | Contact",
    "Home » World » Europe",
    "Share",
    "Tweet",
    "Share on Facebook",
    "Advertisement",
    "We use cookies to improve your experience.",
    "By continuing to browse you accept our cookie policy and privacy policy.",
    "(Photo: Reuters)",
    "Workers repair a breach in the northern sea wall.",
    "Image: AP",
    "Click to enlarge",
    "harbour_wall-2024_03.jpeg",
    "HARBOUR CITIES RACE TO REBUILD SEA WALLS BEFORE WINTER STORMS",
    "Related Articles",
    "Floods Leave Thousands Without Power",
    "Ports Brace for Record Tides",
    "Tags: coast, floods, infrastructure",
    "12 Comments",
    "Leave a Reply",
    "Log in to reply",
    "Privacy Policy | Terms of Use | Cookie Settings",
    "© 2024 Example Media. All rights reserved.",
]


def test_news_blog_prose_is_exactly_the_article() -> None:
    assert _of_kind(NEWS_BLOG, "prose") == NEWS_BLOG_PROSE
    _assert_no_boilerplate_in_prose(NEWS_BLOG, NEWS_BLOG_BOILERPLATE)


def test_news_blog_title_byline_and_boilerplate() -> None:
    kinds = {line: kind for kind, line in _kinds(NEWS_BLOG)}
    assert _of_kind(NEWS_BLOG, "title") == ["Harbour Cities Race to Rebuild Sea Walls Before Winter Storms"]
    assert _of_kind(NEWS_BLOG, "byline") == ["By Jane Doe | March 3, 2024"]
    assert byline_author("By Jane Doe | March 3, 2024") == "Jane Doe"
    whole_lines = [line for line in NEWS_BLOG_BOILERPLATE if line in kinds]
    assert len(whole_lines) >= 18
    for line in whole_lines:
        assert kinds[line] == "boilerplate", line
    # The headline repeated in capitals at the foot of the page.
    reasons = {b.text(NEWS_BLOG): b.reason for b in analyse(NEWS_BLOG)}
    assert reasons["HARBOUR CITIES RACE TO REBUILD SEA WALLS BEFORE WINTER STORMS"] == "repeated"
    assert reasons["Workers repair a breach in the northern sea wall. (Photo: Reuters)"] == "image"
    assert reasons["harbour_wall-2024_03.jpeg"] == "image"
    assert reasons["Home » World » Europe"] == "navigation"
    assert reasons["12 Comments"] == "comments"
    assert reasons["© 2024 Example Media. All rights reserved."] == "disclaimer"
    assert not _of_kind(NEWS_BLOG, "heading")


def test_cookie_banners_are_disclaimers() -> None:
    for banner in (
        "We use cookies to ensure that we give you the best experience on our website.",
        "This website uses cookies to improve your experience. We'll assume you're ok with this, "
        "but you can opt-out if you wish.",
        "By using this site you agree to our use of cookies and to our terms of service.",
    ):
        text = f"A Headline About Something\n{banner}\n{NEWS_BLOG_PROSE[0]}\n"
        assert _kinds(text)[1] == ("boilerplate", banner), banner


FORUM_THREAD = """\
Welcome to Rail Enthusiasts Forum
Board index ‹ Rail Talk ‹ Freight
New Topic
Post Reply
Page 1 of 3
Freight line reopening in the valley
Posted by trackwalker » Tue Jun 04, 2024 9:12 pm
Joined: Mar 2019
Posts: 1,204
The regional council has confirmed that the old freight line through the valley will reopen to goods \
traffic next spring after a three-year closure.
According to the council's transport report, the line will carry timber and gravel from the quarries to \
the port, taking about sixty lorries a day off the valley road.
Quote
Reply with quote
Top
Users browsing this forum: No registered users and 3 guests
Who is online
In total there are 41 users online :: 3 registered, 0 hidden and 38 guests
Total posts 184,552
Total topics 9,310
Total members 4,871
Our newest member railfan88
Statistics
9,310
Members
4,871
Forum statistics
"""


def test_forum_thread_keeps_only_the_post() -> None:
    prose = _of_kind(FORUM_THREAD, "prose")
    assert prose == [
        "The regional council has confirmed that the old freight line through the valley will reopen to goods "
        "traffic next spring after a three-year closure.",
        "According to the council's transport report, the line will carry timber and gravel from the quarries "
        "to the port, taking about sixty lorries a day off the valley road.",
    ]
    post = set(prose)
    for kind, line in _kinds(FORUM_THREAD):
        if line not in post:
            assert kind != "prose", line
    _assert_no_boilerplate_in_prose(
        FORUM_THREAD, [line for line in FORUM_THREAD.splitlines() if line not in post and count_words(line) >= 2]
    )


def test_forum_statistics_are_not_headings() -> None:
    """Label-and-number lines right above the post are statistics, not a section heading."""
    reasons = {b.text(FORUM_THREAD): (b.kind, b.reason) for b in analyse(FORUM_THREAD)}
    assert reasons["Posts: 1,204"] == ("boilerplate", "number")
    assert reasons["Joined: Mar 2019"] == ("boilerplate", "number")
    assert reasons["9,310"] == ("boilerplate", "number")
    assert reasons["Board index ‹ Rail Talk ‹ Freight"] == ("boilerplate", "navigation")
    assert reasons["Page 1 of 3"] == ("boilerplate", "navigation")
    assert not _of_kind(FORUM_THREAD, "heading")
    assert _of_kind(FORUM_THREAD, "byline") == ["Posted by trackwalker » Tue Jun 04, 2024 9:12 pm"]


WRAPPED_PARAGRAPHS = [
    "The councils of four towns along the lower river voted on Thursday to pool part of their budgets into a "
    "shared flood fund, ending a dispute that had delayed repairs to the embankments for almost two years. The "
    "fund will start with 3.2 million crowns and grow each year.",
    "Mayors said the decision followed the spring floods, when water from the river reached the market square in "
    'the oldest of the towns and closed the main bridge for nine days. "Nobody wants to see that again," one of '
    "them said after the vote.",
    "Under the agreement, each town keeps control of its own defences but must report every repair to a joint "
    "committee, which can release money from the fund when two or more towns are affected by the same event.",
    "Critics argued that the smallest town would pay more than its share, since its embankments are the shortest.",
]


def _wrapped_article(width: int, newline: str = "\n") -> str:
    parts = ["RIVER TOWNS VOTE ON SHARED FLOOD FUND", "By Tomas Lindqvist"]
    parts += [textwrap.fill(p, width) for p in WRAPPED_PARAGRAPHS]
    parts.append("Copyright 2024 Valley Courier. All rights reserved.")
    return ("\n\n".join(parts) + "\n").replace("\n", newline)


@pytest.mark.parametrize("width", [60, 72, 79])
@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
def test_hard_wrapped_paragraphs_are_single_prose_blocks(width: int, newline: str) -> None:
    text = _wrapped_article(width, newline)
    assert max(len(line) for line in text.splitlines()) <= width
    blocks = analyse(text)
    _assert_offsets(text, blocks)
    prose = [b.text(text) for b in blocks if b.kind == "prose"]
    expected = [textwrap.fill(p, width).replace("\n", newline) for p in WRAPPED_PARAGRAPHS]
    assert prose == expected
    assert all(newline in p for p in prose[:3]), "the long paragraphs span several lines"
    assert [" ".join(p.split()) for p in prose] == WRAPPED_PARAGRAPHS
    assert _of_kind(text, "title") == ["RIVER TOWNS VOTE ON SHARED FLOOD FUND"]
    assert [byline_author(b) for b in _of_kind(text, "byline")] == ["Tomas Lindqvist"]
    assert [b.reason for b in blocks if b.kind == "boilerplate"] == ["disclaimer"]
    _assert_no_boilerplate_in_prose(text, ["Valley Courier", "All rights reserved", "By Tomas Lindqvist"])


def test_wrapped_lists_and_headings_are_not_joined_to_the_paragraph() -> None:
    paragraph = textwrap.fill(WRAPPED_PARAGRAPHS[0], 72)
    list_items = "- Repairs start in the oldest town first, next month.\n- The fund is reviewed every spring."
    text = f"{paragraph}\n{list_items}\n## What comes next\n{textwrap.fill(WRAPPED_PARAGRAPHS[2], 72)}\n"
    kinds = _kinds(text)
    assert kinds[0] == ("prose", paragraph)
    assert kinds[1] == ("prose", "- Repairs start in the oldest town first, next month.")
    assert kinds[2] == ("prose", "- The fund is reviewed every spring.")
    assert kinds[3] == ("heading", "## What comes next")
    assert kinds[4][0] == "prose"


MARKDOWN_ARTICLE = """\
# Orchard Growers Turn to Drones for Frost Warnings

*By Lucia Moreno*

![Drone over an apple orchard](images/drone-orchard.png)

Fruit growers in the northern valleys have started using small drones fitted with thermal cameras to find \
cold pockets in their orchards before a frost sets in.

## How the system works

The drones fly a fixed route at dusk and send temperature maps to a phone app, which warns growers when any \
part of an orchard drops below two degrees.

- Flights take about twenty minutes for a ten-hectare orchard.
- Growers can start wind machines or heaters from the same app.
- [Share](https://example.org/share)

## What growers say

"Last spring we lost almost half of the early blossom in one night," said a grower who has used the system \
for two seasons.

[Read more](https://example.org/more)

**Tags:** farming, technology

---
"""


def test_markdown_article() -> None:
    assert _of_kind(MARKDOWN_ARTICLE, "prose") == [
        "Fruit growers in the northern valleys have started using small drones fitted with thermal cameras to "
        "find cold pockets in their orchards before a frost sets in.",
        "The drones fly a fixed route at dusk and send temperature maps to a phone app, which warns growers when "
        "any part of an orchard drops below two degrees.",
        "- Flights take about twenty minutes for a ten-hectare orchard.",
        "- Growers can start wind machines or heaters from the same app.",
        '"Last spring we lost almost half of the early blossom in one night," said a grower who has used the '
        "system for two seasons.",
    ]
    assert _of_kind(MARKDOWN_ARTICLE, "title") == ["# Orchard Growers Turn to Drones for Frost Warnings"]
    assert _of_kind(MARKDOWN_ARTICLE, "heading") == ["## How the system works", "## What growers say"]
    assert [byline_author(b) for b in _of_kind(MARKDOWN_ARTICLE, "byline")] == ["Lucia Moreno"]
    boilerplate = _of_kind(MARKDOWN_ARTICLE, "boilerplate")
    assert boilerplate == [
        "![Drone over an apple orchard](images/drone-orchard.png)",
        "- [Share](https://example.org/share)",
        "[Read more](https://example.org/more)",
        "**Tags:** farming, technology",
        "---",
    ]
    _assert_no_boilerplate_in_prose(MARKDOWN_ARTICLE, [*boilerplate, "drone-orchard.png", "example.org"])
    _assert_offsets(MARKDOWN_ARTICLE, analyse(MARKDOWN_ARTICLE))


def test_inline_related_links_are_navigation() -> None:
    text = (
        "A Headline About Harbour Repairs\n"
        "RELATED: Floods Leave Thousands Without Power\n"
        "Read more: Ports brace for record tides.\n"
        f"{NEWS_BLOG_PROSE[0]}\n"
        "See also\n"
        f"{NEWS_BLOG_PROSE[1]}\n"
    )
    assert _of_kind(text, "prose") == NEWS_BLOG_PROSE[:2]
    assert not _of_kind(text, "heading")


# --------------------------------------------------------------------------- false positives

PROSE_SENTENCES = [
    "The minister's comments on the privacy policy drew criticism from lawmakers who said the rules were too weak.",
    "Readers who subscribe to the print edition will receive the full set of images by post next month.",
    "Copyright lawyers say the images, taken by a drone over the harbour, may not be protected at all.",
    "All rights to the footage were reserved for the national broadcaster, the court heard on Tuesday.",
    "Users of the website said the new privacy notice was confusing and hard to find.",
    "He declined to leave a comment.",
    "The company did not respond to a request for comment.",
    "Residents said tap water looked brown in the photo they shared.",
    "12 comments were received by the council before the consultation closed.",
    "Share prices fell 4% on Monday after the company cut its forecast.",
    "Members of parliament voted 212 to 190 to approve the flood fund.",
    "By joining forces, the two ports hope to cut their costs by a fifth.",
    "By Monday, officials had evacuated the whole town.",
    "Continue reading the report and the real cost is far higher than the ministry admits.",
    "She said the terms and conditions of the loan had never been published.",
    "Officials will view all comments from residents before the final vote in June.",
]


@pytest.mark.parametrize("sentence", PROSE_SENTENCES)
def test_prose_mentioning_widget_words_stays_prose(sentence: str) -> None:
    text = f"Harbour Repairs Begin\n\n{NEWS_BLOG_PROSE[0]}\n\n{sentence}\n\n{NEWS_BLOG_PROSE[1]}\n"
    assert _of_kind(text, "prose") == [NEWS_BLOG_PROSE[0], sentence, NEWS_BLOG_PROSE[1]]


def test_sentence_starting_with_by_inside_a_paragraph_is_prose() -> None:
    paragraph = (
        "By joining forces, these countries could balance the region's naval power. "
        "The plan would also share the cost of patrols."
    )
    text = f"Ports Sign a Pact\n\n{paragraph}\n"
    assert _kinds(text) == [("title", "Ports Sign a Pact"), ("prose", paragraph)]
    assert byline_author(paragraph) is None


# --------------------------------------------------------------------------- general rules


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("IMG_20240303_0912.PNG", "image"),
        ("sea-wall.webp", "image"),
        ("Tap to see the full size photo", "image"),
        ("(Click to enlarge)", "image"),
        ("Photo credit: Jan Novak", "image"),
        ("Flood defences in the old town (Courtesy of the city council)", "image"),
        ("42", "number"),
        ("3,210 / 4,000", "number"),
        ("12.5%", "number"),
        ("—", "short"),
        ("* * *", "short"),
        ("Skip to content", "navigation"),
        ("Back to top", "navigation"),
        ("Next »", "navigation"),
        ("News › Science › Climate", "navigation"),
        ("Follow us on Instagram", "navigation"),
        ("You may also like", "navigation"),
        ("Subscribe to our newsletter", "navigation"),
        ("3 responses to “Harbour Cities Race to Rebuild”", "comments"),
        ("Show more replies", "comments"),
        ("Be the first to comment", "comments"),
        ("Join the discussion", "comments"),
        ("Most voted", "comments"),
        ("All rights reserved.", "disclaimer"),
        ("Copyright 2023 Valley Courier", "disclaimer"),
        (
            "Views expressed here do not reflect the editorial policy of this site.",
            "disclaimer",
        ),
    ],
)
def test_general_boilerplate_rules(line: str, reason: str) -> None:
    text = f"Harbour Repairs Begin\n{NEWS_BLOG_PROSE[0]}\n{line}\n{NEWS_BLOG_PROSE[1]}\n"
    blocks = analyse(text)
    assert [(b.kind, b.reason) for b in blocks if b.text(text) == line] == [("boilerplate", reason)]


def test_short_line_is_a_heading_only_when_prose_follows() -> None:
    text = f"Harbour Repairs Begin\n\nWhat the Engineers Found\n\n{NEWS_BLOG_PROSE[0]}\n\nA Dangling Label\n"
    assert _kinds(text) == [
        ("title", "Harbour Repairs Begin"),
        ("heading", "What the Engineers Found"),
        ("prose", NEWS_BLOG_PROSE[0]),
        ("boilerplate", "A Dangling Label"),
    ]


def test_title_is_the_first_content_line_after_boilerplate() -> None:
    text = f"Home | News | Sport\nAdvertisement\nHarbour Repairs Begin\n{NEWS_BLOG_PROSE[0]}\n"
    assert _of_kind(text, "title") == ["Harbour Repairs Begin"]
    # An article that opens with a sentence has no title block.
    assert not _of_kind(f"{NEWS_BLOG_PROSE[0]}\nWhat Comes Next\n{NEWS_BLOG_PROSE[1]}\n", "title")


def test_repeated_lines_are_boilerplate_whatever_their_quotes_and_case() -> None:
    quote = '"We are buying time, not solving the problem," said the engineer on the harbour wall.'
    retyped = quote.replace('"', "\u201c", 1).replace('"', "\u201d", 1).upper().replace("  ", " ")
    text = f"Harbour Repairs Begin\n\n{quote}\n\n{NEWS_BLOG_PROSE[0]}\n\n{retyped}\n\nHARBOUR  REPAIRS BEGIN\n"
    kinds = _kinds(text)
    assert [k for k, _ in kinds] == ["title", "prose", "prose", "boilerplate", "boilerplate"]
    assert [b.reason for b in analyse(text)][3:] == ["repeated", "repeated"]


def test_cleaned_text_keeps_headings_and_prose_only() -> None:
    cleaned = cleaned_text(NEWS_BLOG, analyse(NEWS_BLOG))
    assert cleaned == "\n\n".join(NEWS_BLOG_PROSE)
    md = cleaned_text(MARKDOWN_ARTICLE, analyse(MARKDOWN_ARTICLE))
    assert md.startswith("Fruit growers")
    assert "## How the system works" in md
    assert "Tags" not in md
    assert "drone-orchard.png" not in md


# --------------------------------------------------------------------------- normalize, byline, title


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("Japan\u2019s \u2018Asian NATO\u2019", "japan's 'asian nato'"),
        ("\u201cQuoted\u201d \u201eLow\u201f", '"quoted" "low"'),
        ("medium\u2013 to long\u2014term \u2212 x", "medium- to long-term - x"),
        ("STRASSE Stra\u00dfe", "strasse strasse"),
        ("  many \t spaces\n\nand\u00a0lines  ", "many spaces and lines"),
        ("\ufb01nal \uff21", "final a"),
        ("", ""),
    ],
)
def test_normalize(raw: str, folded: str) -> None:
    assert normalize(raw) == folded


def test_normalize_makes_differently_typed_strings_equal() -> None:
    assert normalize("India\u2019s  \u201cAsian NATO\u201d \u2014 No") == normalize('INDIA\'S "asian nato" - no')


@pytest.mark.parametrize(
    ("line", "author"),
    [
        ("Written by Ahmed Adel, Cairo-based researcher", "Ahmed Adel"),
        ("Written by\u00a0Ahmed Adel, Cairo-based geopolitics and political economy researcher", "Ahmed Adel"),
        ("By Jane Doe | March 3", "Jane Doe"),
        ("By Jane Doe | March 3, 2024", "Jane Doe"),
        ("By Jane Doe March 3, 2024", "Jane Doe"),
        ("By Jane Doe - Staff Reporter", "Jane Doe"),
        ("By Jane Doe (Reuters)", "Jane Doe"),
        ("Author: Professor Pema Gyalpo, PHD", "Professor Pema Gyalpo"),
        ("Authors: Ana de la Cruz and Li Wei", "Ana de la Cruz and Li Wei"),
        ("Reported by Ana de la Cruz on 4 May", "Ana de la Cruz"),
        ("Posted by trackwalker » Tue Jun 04, 2024 9:12 pm", "trackwalker"),
        ("*By Lucia Moreno*", "Lucia Moreno"),
        ("BY JOHN SMITH", "JOHN SMITH"),
        ("By Jane Doe.", "Jane Doe"),
        ("By joining forces, these countries could balance China\u2019s military power.", None),
        ("By Monday, officials had evacuated the whole town.", None),
        ("by the end of the year", None),
        ("By 2030 the fund will be empty", None),
        ("The story was written by Jane Doe", None),
        ("Author:", None),
        ("By", None),
        ("", None),
    ],
)
def test_byline_author(line: str, author: str | None) -> None:
    assert byline_author(line) == author


@pytest.mark.parametrize(
    ("line", "title"),
    [
        ("# Orchard Growers Turn to Drones", "Orchard Growers Turn to Drones"),
        ("## **Bold  Heading**  ", "Bold Heading"),
        ("\ufeff\u00a0Plain Headline\u00a0", "Plain Headline"),
        ("# The **new** sea walls _hold_", "The new sea walls hold"),
        ("# Why snake_case_names and 2*3*4 stay", "Why snake_case_names and 2*3*4 stay"),
    ],
)
def test_title_text(line: str, title: str) -> None:
    assert title_text(line) == title


# --------------------------------------------------------------------------- offsets and line endings

ARTICLE_LINES = [
    "Harbour Repairs Begin",
    "",
    "By Jane Doe",
    NEWS_BLOG_PROSE[0],
    "\u00a0\u00a0",
    NEWS_BLOG_PROSE[1],
    "   ",
    "  \u00a0Share\u00a0  ",
    "12 Comments",
]


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
@pytest.mark.parametrize("bom", ["", "\ufeff"], ids=["plain", "bom"])
def test_offsets_with_any_line_ending_bom_and_nbsp(newline: str, bom: str) -> None:
    text = bom + newline.join(ARTICLE_LINES)
    blocks = analyse(text)
    _assert_offsets(text, blocks)
    assert [(b.kind, b.text(text)) for b in blocks] == [
        ("title", "Harbour Repairs Begin"),
        ("byline", "By Jane Doe"),
        ("prose", NEWS_BLOG_PROSE[0]),
        ("prose", NEWS_BLOG_PROSE[1]),
        ("boilerplate", "Share"),
        ("boilerplate", "12 Comments"),
    ]
    assert blocks[0].start == len(bom)


def test_nbsp_only_lines_separate_wrapped_paragraphs() -> None:
    first, second = (textwrap.fill(p, 70) for p in WRAPPED_PARAGRAPHS[:2])
    text = f"{first}\n\u00a0\n{second}\n"
    assert _of_kind(text, "prose") == [first, second]


@pytest.mark.parametrize("text", ["", "\n\n", "\ufeff", " \u00a0\r\n\t\r", "\u3000"])
def test_blank_text_has_no_blocks(text: str) -> None:
    assert analyse(text) == []


def test_offsets_on_every_synthetic_page() -> None:
    for text in (NEWS_BLOG, FORUM_THREAD, MARKDOWN_ARTICLE, _wrapped_article(72, "\r\n")):
        _assert_offsets(text, analyse(text))
        crlf = text.replace("\r\n", "\n").replace("\n", "\r\n")
        assert [b.kind for b in analyse(crlf)] == [b.kind for b in analyse(text)]


def test_short_page_with_long_paragraphs_is_not_treated_as_hard_wrapped() -> None:
    """A few short header lines above one long paragraph must not be glued into that paragraph."""
    text = (
        "Home | World | Politics | Business | Contact\n"
        "Harbour Cities Race to Rebuild Sea Walls Before Winter Storms\n"
        "By Jane Doe | March 3, 2024\n"
        f"{NEWS_BLOG_PROSE[1]}\n"
    )
    assert [k for k, _ in _kinds(text)] == ["boilerplate", "title", "byline", "prose"]
    assert _of_kind(text, "prose") == [NEWS_BLOG_PROSE[1]]


@pytest.mark.parametrize(
    ("line", "author"),
    [
        ("By \u0141ukasz Nowak", "\u0141ukasz Nowak"),
        ("By \u00c9lodie Martin and \u00d6zlem T\u00fcrk", "\u00c9lodie Martin and \u00d6zlem T\u00fcrk"),
        ("- By Jane Doe", "Jane Doe"),
        ("[By Jane Doe](https://example.org/authors/jane-doe)", "Jane Doe"),
        ("By \u00e9tablishing a fund, the towns shared the cost.", None),
    ],
)
def test_byline_author_beyond_ascii_and_markdown(line: str, author: str | None) -> None:
    assert byline_author(line) == author
    text = f"Harbour Repairs Begin\n{line}\n{NEWS_BLOG_PROSE[0]}\n"
    assert [b.kind for b in analyse(text)][1] == ("byline" if author else "prose")

"""Files of every format the corpus folder takes, written at run time for the tests.

A PDF report with page labels (i, ii, then 1, 2, ...), a running header and footer, a
two-column page, a footnote and a paragraph that crosses a page break; a Word file with
headings, a table and core properties; saved web pages with JSON-LD, OpenGraph, microdata,
comments and cookie banners.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

HEADER = "Northern Harbour Authority - Annual Report 2024"
FOOTER = "Confidential draft for the board"
#: The paragraph that runs from the foot of the first body page onto the next one.
CROSSING = (
    "The dredging of the outer channel took most of the year. Crews removed silt from the approach lanes "
    "in three campaigns, working at night so that ferries could keep their timetable, and the survey vessel "
    "measured the new depth after each campaign. The third campaign found an old wreck that had to be lifted "
    "before the lanes could be opened to the largest container ships, which delayed the final survey by six "
    "weeks. The authority paid for the lifting from its contingency reserve, and the wreck now stands in the "
    "maritime museum beside the ferry terminal, where visitors can walk around its restored hull."
)
FOOTNOTE = "1 Tonnage figures are in gross tonnes as reported by the harbour master's office."
FRONT = (
    "This report describes the work of the Northern Harbour Authority during the year. It covers dredging, "
    "the new quay, the ferry terminal and the accounts of the authority."
)
BODY_1 = [
    "Traffic through the harbour grew by eleven percent, the fastest growth since the authority was founded.",
    "Most of the growth came from container ships calling at the new quay, which opened in March.",
]
TWO_COLUMNS = (
    "The new quay was built by a consortium of three local firms. Its piles were driven in winter, when the "
    "water is calm, and the deck was poured in sections over the spring. Inspectors approved each section "
    "before the next was begun. The cranes arrived by sea from the manufacturer and were assembled on the "
    "quay itself over a fortnight. Their first ship was a feeder vessel carrying timber from the Baltic. "
    "Since then the quay has handled more than four hundred calls, and its berth occupancy is now close to "
    "the level the business plan expected for its third year of operation."
)
#: Paragraphs that fill the first body page (distinct, so that no body line repeats).
FILLERS = [
    f"In the {month} the harbour handled {n} ship calls, and the pilots guided {n // 3} of them through the outer "
    f"channel, most of them at night when the tide was highest."
    for month, n in (
        ("first quarter", 312),
        ("second quarter", 355),
        ("third quarter", 402),
        ("fourth quarter", 371),
        ("busiest week", 61),
        ("quietest week", 19),
        ("month of storms", 88),
        ("holiday season", 140),
        ("first month of the new quay", 97),
        ("last month of the year", 126),
        ("year as a whole", 1440),
    )
]
LAST = "The accounts of the authority show a surplus for the fourth year in a row."


def report_pdf(*, labels: bool = True) -> bytes:
    """A five-page report: two front pages labelled i and ii, then body pages labelled 1, 2, 3."""
    from fpdf import FPDF

    class Report(FPDF):  # type: ignore[misc]
        def header(self) -> None:
            self.set_font("Helvetica", size=8)
            self.set_y(8)
            self.cell(0, 4, HEADER, align="C")
            self.set_y(30)

        def footer(self) -> None:
            self.set_y(-14)
            self.set_font("Helvetica", size=8)
            self.cell(0, 4, FOOTER, align="L")
            self.cell(0, 4, self.get_page_label() if labels else str(self.page_no()), align="R")

    pdf = Report(format="A4")
    pdf.set_auto_page_break(True, margin=25)
    pdf.set_title("Annual Report 2024")
    pdf.set_author("Karin Holm")
    pdf.set_creation_date(datetime(2025, 2, 3, tzinfo=UTC))
    style = {"label_style": "r"} if labels else {}
    pdf.add_page(**style)
    pdf.set_font("Helvetica", "B", 16)
    pdf.multi_cell(0, 8, "Annual Report 2024")
    pdf.ln(4)
    pdf.set_font("Helvetica", size=11)
    pdf.multi_cell(0, 6, FRONT)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 13)
    pdf.multi_cell(0, 7, "Contents")
    pdf.ln(3)
    pdf.set_font("Helvetica", size=11)
    pdf.multi_cell(0, 6, "The year in brief, the dredging, the new quay and the accounts, in that order.")
    pdf.add_page(**({"label_style": "D", "label_start": 1} if labels else {}))
    pdf.set_font("Helvetica", "B", 13)
    pdf.multi_cell(0, 7, "The year in brief")
    pdf.ln(3)
    pdf.set_font("Helvetica", size=11)
    for paragraph in BODY_1:
        pdf.multi_cell(0, 6, paragraph)
        pdf.ln(4)
    # Fill the page so that CROSSING starts near its foot and runs onto the next page.
    fillers = iter(FILLERS)
    while pdf.get_y() < 225:
        pdf.multi_cell(0, 6, next(fillers))
        pdf.ln(4)
    pdf.set_font("Helvetica", "B", 13)
    pdf.multi_cell(0, 7, "The dredging")
    pdf.ln(3)
    pdf.set_font("Helvetica", size=11)
    pdf.multi_cell(0, 6, CROSSING)  # runs past the 25 mm bottom margin onto page "2"
    pdf.ln(4)
    pdf.multi_cell(0, 6, "Tonnage handled rose to 4.2 million tonnes.1")
    pdf.set_font("Helvetica", size=7)
    pdf.set_y(-32)
    pdf.multi_cell(0, 4, FOOTNOTE)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 13)
    pdf.multi_cell(0, 7, "The new quay")
    pdf.ln(3)
    pdf.set_font("Helvetica", size=11)
    with pdf.text_columns(ncols=2, gutter=8, balance=True) as cols:
        cols.write(TWO_COLUMNS)
    pdf.ln(6)
    pdf.multi_cell(0, 6, LAST)
    return bytes(pdf.output())


def scanned_pdf() -> bytes:
    """A PDF whose only page holds an image and no text (a scan)."""
    from fpdf import FPDF
    from PIL import Image

    image = Image.new("RGB", (200, 100), "white")
    pdf = FPDF()
    pdf.add_page()
    pdf.image(image, x=10, y=10, w=100)
    return bytes(pdf.output())


def encrypted_pdf() -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_encryption(owner_password="owner", user_password="secret")
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    pdf.multi_cell(0, 6, "Nobody without the password can read this sentence about the harbour.")
    return bytes(pdf.output())


def report_docx(*, author: str = "Ingrid Solberg", title: str = "Ferry Timetable Review") -> bytes:
    import docx

    document = docx.Document()
    props = document.core_properties
    props.author = author
    props.title = title
    props.created = datetime(2024, 11, 5, 10, 30, tzinfo=UTC)
    document.add_heading(title, level=0)
    document.add_heading("Why the timetable changed", level=1)
    document.add_paragraph(
        "The winter timetable moved the first ferry forty minutes earlier so that commuters could reach the "
        "mainland before the start of the working day."
    )
    document.add_paragraph(
        "Passengers asked for the change in the survey of last spring, and the operator agreed to try it for "
        "one season before deciding whether to keep it."
    )
    document.add_heading("What the survey found", level=1)
    document.add_paragraph(
        "Two thirds of the passengers who answered the survey travel every weekday, and most of them drive onto "
        "the ferry rather than walking on."
    )
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text = "Departure"
    table.cell(0, 1).text = "Passengers"
    table.cell(1, 0).text = "06:20"
    table.cell(1, 1).text = "412"
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


NEWS_PAGE = """<!DOCTYPE html>
<!-- saved from url=(0052)https://www.harbour-gazette.example/2024/03/quay.html -->
<html lang="en"><head>
<meta http-equiv="Content-Type" content="text/html; charset=windows-1252">
<title>Quay opens to container ships | The Harbour Gazette</title>
<meta property="og:title" content="New quay opens to container ships">
<meta property="og:site_name" content="The Harbour Gazette">
<meta property="og:url" content="https://www.harbour-gazette.example/2024/03/new-quay-opens">
<script type="application/ld+json">
{"@context": "https://schema.org", "@type": "NewsArticle", "headline": "New quay opens to container ships",
 "author": [{"@type": "Person", "name": "Maria Lindqvist"}], "datePublished": "2024-03-14T09:00:00+01:00",
 "publisher": {"@type": "Organization", "name": "The Harbour Gazette"}}
</script>
</head><body>
<div class="cookie-banner">We use cookies to improve your experience. Accept all cookies or manage your choices.</div>
<nav><ul><li><a href="/">Home</a></li><li><a href="/news">News</a></li><li><a href="/sport">Sport</a></li></ul></nav>
<article>
<h1>New quay opens to container ships</h1>
<p class="byline">By Maria Lindqvist</p>
<p>The northern harbour\u2019s new quay received its first container ship on Thursday, three months after the
cranes were assembled on the quay itself.</p>
<h2>A long wait</h2>
<p>Shipping lines had waited almost ten years for a berth deep enough for their larger vessels, and two of them
have already booked weekly calls for the coming season.</p>
<p>The harbour master said the quay would handle about four hundred calls in its first year, a figure the
authority\u2019s business plan had expected only for its third.</p>
</article>
<aside class="related"><h3>Related stories</h3><ul><li><a href="/a">Ferry timetable changes again</a></li>
<li><a href="/b">Council approves harbour budget</a></li></ul></aside>
<section id="comments" class="comments"><h3>12 comments</h3>
<div class="comment"><p>Reader comment: this quay is a waste of money and nobody asked the residents about it.</p></div>
</section>
<footer><p>\xa9 2024 The Harbour Gazette. All rights reserved. Privacy policy. Terms of use.</p></footer>
</body></html>
"""


def news_page() -> bytes:
    """A saved news page in Windows-1252 with JSON-LD, OpenGraph, a cookie banner, comments and related links."""
    return NEWS_PAGE.encode("cp1252")


MICRODATA_PAGE = """<!DOCTYPE html>
<!-- saved from url=(0041)https://blog.example.org/posts/tide-tables -->
<html><head><meta charset="utf-8"><title>Reading tide tables</title></head><body>
<article itemscope itemtype="https://schema.org/BlogPosting">
<h1 itemprop="headline">Reading tide tables without mistakes</h1>
<p>Posted on <time itemprop="datePublished" datetime="2023-06-02">2 June 2023</time> by
<span itemprop="author" itemscope itemtype="https://schema.org/Person">
<span itemprop="name">Jonas Berg</span></span></p>
<p>Tide tables give the times and heights of high and low water for a harbour, and every skipper should know how
to read them before leaving the berth.</p>
<p>The heights are given above chart datum, which is usually the lowest astronomical tide, so a negative height
means the water falls below the depths printed on the chart.</p>
</article></body></html>
"""


def microdata_page() -> bytes:
    return MICRODATA_PAGE.encode("utf-8")


def write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path

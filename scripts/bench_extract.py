#!/usr/bin/env python
"""Measure text extraction speed per format: milliseconds per file, per page (PDF) and per MB.

    python scripts/bench_extract.py                     # files written here, as the tests write them
    python scripts/bench_extract.py --corpus my-docs    # every .html/.htm/.pdf/.docx under a folder

Each file is extracted ``--repeat`` times through the extractor the build uses
(:func:`qa.ingest.extract.extractor_for`), after one warm-up call per format (imports
and first-call caches); the median is reported. Without ``--corpus`` the files are the
ones tests/ingest/makers.py writes: a 5-page PDF report, the same report repeated to 50
pages, a saved news page, a saved page padded to about 1 MB with article paragraphs, and a
Word file.

Prints a table and writes the figures as JSON (``--out``, default bench-results/bench-extract.json).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests/ingest/makers.py writes the default files

from qa.ingest.extract import FORMATS, extractor_for  # noqa: E402


def generated() -> dict[str, bytes]:
    from pypdf import PdfReader, PdfWriter  # only to stack the report into a longer PDF
    from tests.ingest import makers

    report = makers.report_pdf()
    writer = PdfWriter()
    for _ in range(10):
        writer.append(PdfReader(io.BytesIO(report)))
    buffer = io.BytesIO()
    writer.write(buffer)
    article = (
        "<p>The harbour handled more ships than in any year before, and the pilots guided most of them "
        "through the outer channel at night, when the tide was highest and the wind had dropped.</p>\n"
    )
    page = makers.NEWS_PAGE.replace("</article>", article * 5000 + "</article>")
    return {
        "report-5-pages.pdf": report,
        "report-50-pages.pdf": buffer.getvalue(),
        "news-page.html": makers.news_page(),
        "news-page-1mb.html": page.encode("cp1252"),
        "review.docx": makers.report_docx(),
    }


def from_folder(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and FORMATS.get(p.suffix.lower()) not in (None, "text")
    }


def measure(files: dict[str, bytes], repeat: int) -> list[dict[str, Any]]:
    warmed: set[str] = set()
    rows = []
    for name, data in files.items():
        fmt = FORMATS[Path(name).suffix.lower()]
        extractor = extractor_for(fmt)
        assert extractor is not None
        if fmt not in warmed:
            extractor.extract(data)
            warmed.add(fmt)
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            extraction = extractor.extract(data)
            times.append(time.perf_counter() - started)
        ms = statistics.median(times) * 1000
        pages = len(extraction.pages)
        rows.append(
            {
                "file": name,
                "format": fmt,
                "extractor": extractor.describe(),
                "bytes": len(data),
                "pages": pages or None,
                "chars": len(extraction.text),
                "ms_per_file": round(ms, 2),
                "ms_per_page": round(ms / pages, 2) if pages else None,
                "ms_per_mb": round(ms / (len(data) / 1e6), 1),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, help="extract every .html/.htm/.pdf/.docx under this folder")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "bench-extract.json")
    args = parser.parse_args()
    files = from_folder(args.corpus) if args.corpus else generated()
    rows = measure(files, args.repeat)
    print(f"{'file':<28} {'format':<6} {'KB':>8} {'pages':>6} {'ms/file':>9} {'ms/page':>8} {'ms/MB':>8}")
    for r in rows:
        page = f"{r['ms_per_page']:.2f}" if r["ms_per_page"] is not None else "-"
        print(
            f"{r['file']:<28} {r['format']:<6} {r['bytes'] / 1024:>8.1f} {r['pages'] or '-':>6} "
            f"{r['ms_per_file']:>9.2f} {page:>8} {r['ms_per_mb']:>8.1f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"repeat": args.repeat, "files": rows}, indent=2) + "\n")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()

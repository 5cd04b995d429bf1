"""Cite: citation data and formats (Markdown, text, CSL-JSON, BibTeX) and quote verification."""

"""Bytes of a text file into text: byte-order marks, binary files refused, UTF-8, stray
Windows-1252 bytes, Windows-1252, Latin-1 (see :func:`decode`)."""

from __future__ import annotations

import codecs
import re

#: How much of a file's start is inspected to decide that it is binary.
SNIFF_BYTES = 8192
#: A file whose inspected start has more than this share of control characters is binary.
MAX_CONTROL_RATIO = 0.10
#: Text that is not UTF-8 is read as UTF-8 with stray Windows-1252 bytes when it has at least one
#: well-formed multi-byte UTF-8 sequence per this many stray high bytes (see :func:`decode`).
STRAY_BYTES_PER_UTF8_SEQUENCE = 4

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
#: C0 control characters other than tab, line feed, vertical tab, form feed and carriage return, and DEL.
_CONTROL_BYTES = bytes([*range(0x00, 0x09), *range(0x0E, 0x20), 0x7F])
_HIGH_BYTES = bytes(range(0x80, 0x100))
#: One well-formed multi-byte UTF-8 sequence.
_UTF8_SEQUENCE_RE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}"
    rb"|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)
_CP1252_FALLBACK = "qa-cp1252-fallback"


def _cp1252_fallback(exc: UnicodeError) -> tuple[str, int]:
    """Decode error handler: bytes that are not UTF-8 are read as Windows-1252 (else Latin-1)."""
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    bad = exc.object[exc.start : exc.end]
    return "".join(_single_byte(b) for b in bad), exc.end


def _single_byte(byte: int) -> str:
    try:
        return bytes([byte]).decode("cp1252")
    except UnicodeDecodeError:  # the five bytes Windows-1252 leaves undefined
        return bytes([byte]).decode("latin-1")


codecs.register_error(_CP1252_FALLBACK, _cp1252_fallback)


def decode(data: bytes) -> tuple[str, str]:
    """Text of a file and the encoding that read it.

    In order: a byte-order mark decides (UTF-32, UTF-8 — whose mark stays in the text as
    U+FEFF — or UTF-16); binary data raises ``ValueError`` (a NUL byte or more than
    ``MAX_CONTROL_RATIO`` control characters in the first ``SNIFF_BYTES``); then UTF-8;
    then, when the file's well-formed multi-byte UTF-8 sequences are at least a quarter as
    many as its stray high bytes, UTF-8 with each stray byte read as Windows-1252 (``"utf-8+cp1252"``: text
    pasted together from two sources); else Windows-1252; else Latin-1, which reads
    any bytes.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding), encoding
            except UnicodeDecodeError as exc:
                raise ValueError(f"the file starts with a {encoding} byte-order mark but is not {encoding}") from exc
    head = data[:SNIFF_BYTES]
    if b"\0" in head:
        raise ValueError("the file is binary (it contains NUL bytes)")
    controls = len(head) - len(head.translate(None, _CONTROL_BYTES))
    if head and controls > MAX_CONTROL_RATIO * len(head):
        raise ValueError(f"the file is binary ({controls} of its first {len(head)} bytes are control characters)")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    high = len(data) - len(data.translate(None, _HIGH_BYTES))
    sequences = _UTF8_SEQUENCE_RE.findall(data)
    stray = high - sum(len(m) for m in sequences)
    # A well-formed multi-byte sequence rarely occurs by accident in Windows-1252 text (it
    # takes an accented capital followed by punctuation such as ’ or –), so a few of them
    # outweigh several stray bytes.
    if sequences and STRAY_BYTES_PER_UTF8_SEQUENCE * len(sequences) >= stray:
        return data.decode("utf-8", errors=_CP1252_FALLBACK), "utf-8+cp1252"
    for encoding in ("cp1252", "latin-1"):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise ValueError("the file is not text in UTF-8, Windows-1252 or Latin-1")  # pragma: no cover

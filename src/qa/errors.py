"""Every error qa raises on purpose derives from :class:`QAError`.

The tree::

    QAError
    ├── CorpusError                 the corpus folder cannot be read as a whole
    ├── ExtractionError             one web page, PDF or Word file cannot be read (also a
    │                               ValueError); the build skips that file and says why
    ├── ModelError                  the embedding model cannot be found or loaded
    ├── IndexStoreError             something is wrong with the index folder
    │   ├── IndexNotFoundError      no build yet (no CURRENT, or it names a missing folder)
    │   ├── IndexCorruptError       a build's files are unreadable or disagree with each other
    │   ├── IndexMismatchError      the build was made with another model, dimension,
    │   │                           chunker or format version than the one in use
    │   ├── RollbackError           there is no previous build to roll back to
    │   └── StoreUnavailableError   the database server cannot be reached (it may come back)
    ├── NotFoundError               a client asked for an id that does not exist
    │   ├── DocumentNotFoundError
    │   └── PassageNotFoundError
    └── InvalidQueryError           a question or parameter the service cannot answer

HTTP codes are chosen in :mod:`qa.server.app` and exit codes in :mod:`qa.cli.commands`; the library
only raises.
"""

from __future__ import annotations


class QAError(Exception):
    """Root of every error raised on purpose by qa."""


class CorpusError(QAError):
    """The corpus folder is missing or holds nothing that can be indexed."""


class ExtractionError(QAError, ValueError):
    """One file of a known format whose text cannot be extracted; the message says why. The build skips it."""


class ModelError(QAError):
    """The embedding model cannot be found or loaded."""


class IndexStoreError(QAError):
    """The index folder cannot be used."""


class IndexNotFoundError(IndexStoreError):
    """There is no complete build to open."""


class IndexCorruptError(IndexStoreError):
    """A build's files are unreadable, truncated or inconsistent with each other."""


class IndexMismatchError(IndexStoreError):
    """A build was made with another model, dimension, chunker or format version."""


class RollbackError(IndexStoreError):
    """There is no previous build to switch CURRENT back to."""


class StoreUnavailableError(IndexStoreError):
    """The database server holding the store cannot be reached now; a later call may succeed."""


class NotFoundError(QAError):
    """A client asked for an id that does not exist."""


class DocumentNotFoundError(NotFoundError):
    """No document has this id."""


class PassageNotFoundError(NotFoundError):
    """No passage has this id; ``doc_id`` names its document when that is still indexed."""

    def __init__(self, message: str, doc_id: str | None = None) -> None:
        super().__init__(message)
        self.doc_id = doc_id


class InvalidQueryError(QAError):
    """The question or one of its parameters cannot be answered as given."""

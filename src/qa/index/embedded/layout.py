"""The folder an index lives in, and the names of what it holds.

::

    index/
      CURRENT                 name of the live build, replaced atomically (os.replace)
      <build-id>/
        manifest.json         model identity, chunker parameters, corpus hash, counts, format
        vectors.faiss         IndexIDMap2 over an inner-product index (exact flat, or HNSW
                              above a size threshold: see :func:`qa.index.vector_index.choose_vector_index`)
        passages.sqlite       documents, passages (text, offsets, ids), their sentences with
                              vectors, FTS5 tables over passages and documents (the text as
                              FTS5 cut it) and each term's postings read out of them
      embedding-cache.sqlite  vectors and passage boundaries reused by the next build

A build is written into a hidden temporary folder, renamed into place when complete,
and only then named in CURRENT, so a reader sees either the old build or the new one,
never half of one (see :mod:`qa.index.embedded.folder`).
"""

from __future__ import annotations

from qa.index.manifest import MANIFEST as MANIFEST  # the folder's name for it, kept with the others

CURRENT = "CURRENT"
VECTORS = "vectors.faiss"
DATABASE = "passages.sqlite"
TMP_PREFIX = ".tmp-"
LOCK = ".build.lock"

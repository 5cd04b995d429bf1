"""The embedded store: an index folder of build folders, FAISS for vectors and SQLite for the rest.

``engine.py`` (the lifecycle's engine: segments and commits as build folders), ``folder.py``
(``CURRENT``, complete builds, the lock, what interrupted writes leave), ``layout.py`` (the
folder's names), ``store.py`` (:class:`EmbeddedStore`, the :class:`~qa.index.protocol.PassageStore`
over one build), ``database.py`` and ``queries.py`` (its SQLite side), ``vectors.py`` (its FAISS
side), ``integrity.py`` (file sizes and checksums) and ``cache.py`` (the embedding, chunk and
extraction cache that makes rebuilds incremental).
"""

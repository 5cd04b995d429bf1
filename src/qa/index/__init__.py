"""Store: builds of passages, vectors and postings, behind one read protocol and one build lifecycle.

Shared by both engines: ``protocol.py`` (what search reads), ``records.py``, ``filters.py``,
``manifest.py`` (the manifest and the build identity), ``vector_index.py`` (which vector index a
build holds), ``prepare.py`` (documents → passages → vectors), ``lifecycle.py`` (build, switch,
rollback, prune, staleness over an engine) and ``location.py`` (which engine a folder or URL
names). The engines: ``embedded/`` (FAISS + SQLite in an index folder) and ``postgres/``
(PostgreSQL + pgvector).
"""

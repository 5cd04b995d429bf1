"""Store: builds of passages and vectors on disk (FAISS + SQLite), their manifests, CURRENT, caches,
and the build pipeline that writes them.
"""

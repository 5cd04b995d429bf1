"""Search: candidates from the store and their fusion (retrieval), highlights, grouping and grounding
(evidence), question terms (terms), and the request checks and answer models (models). Filters are
data of the store layer (:mod:`qa.index.filters`).
"""

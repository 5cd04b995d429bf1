"""Search: candidates from the store, fusion, evidence (highlights, grouping, grounding), filters, and
the answer models.
"""

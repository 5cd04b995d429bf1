"""Load → clean → chunk: a corpus folder into documents, their boilerplate found, sentences split,
passages packed with exact ``[start, end)`` offsets and stable ids.
"""

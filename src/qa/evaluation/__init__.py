"""Measure retrieval quality: question files (evidence strings) and BEIR folders."""

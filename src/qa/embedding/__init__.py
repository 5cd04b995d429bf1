"""Embed: the embedder protocol and its implementations (sentence-transformers, ONNX), the ONNX export,
micro-batching. The only place that touches a model.
"""

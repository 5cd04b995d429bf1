"""Serve over HTTP: the FastAPI app, its middleware, metrics, live reload of new builds and the static
web page.
"""

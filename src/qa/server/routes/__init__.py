"""The HTTP routes, one module per concern; :func:`qa.server.app.create_app` mounts them."""

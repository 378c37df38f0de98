"""The hosted server: ``gradlab-serve`` (:mod:`app.hosting.serve`), a supervisor that starts
the training executors (:mod:`app.live.executor`, one per core) and runs the ASGI app
(:mod:`app.hosting.asgi`) in uvicorn web worker processes; each worker answers the
immutable front-end files from memory (:mod:`app.hosting.static_cache`).

Nothing is imported here: importing :mod:`app.hosting.asgi` builds the app, and the
supervisor (:mod:`app.hosting.serve`) must stay free of torch. See deploy/README.md.
"""

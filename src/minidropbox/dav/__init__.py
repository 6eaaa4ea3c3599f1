"""WebDAV at ``/dav/``: the caller's tree for rclone, Finder, Explorer, GNOME Files, davfs2.

- ``gate.py``: ASGI; app-password authentication, rate limit, path/Destination/depth/XML
  checks — everything refused before the protocol runs.
- ``app.py``: wsgidav configured and run in worker threads (a2wsgi).
- ``provider.py``: resources over ``FileService``/``ChunkService`` (versions, trash, quota,
  journal and notifications exactly as for the API); ``upload.py``: PUT and COPY;
  ``bridge.py``: bytes and calls between the worker threads and the event loop.
- ``properties.py``: dead properties in the database; ``checksums.py``: SHA-1s for
  ``OC-Checksum``/``oc:checksums``.
"""

"""The domain core: pure rules with no I/O (paths, chunking, placement, retention, sync plans).

Nothing in this package may import an HTTP, SQL, or filesystem library; a unit test enforces it.
"""

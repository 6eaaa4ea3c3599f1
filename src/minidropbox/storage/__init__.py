"""Chunk stores: the disk store (atomic, verified), the node HTTP client, an in-memory fake."""

"""Application services: the use cases, composed from core rules, the metadata store and storage.

Routes and CLI commands call these; they never touch SQL or disks themselves.
"""

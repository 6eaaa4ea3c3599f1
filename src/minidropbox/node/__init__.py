"""The storage node: a small ASGI service that owns one directory of chunks.

``create_node_app(NodeSettings)`` in ``minidropbox.node.app`` is its composition root.
"""

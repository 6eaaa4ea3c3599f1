"""The ``minidropbox`` command line: one module per command group."""

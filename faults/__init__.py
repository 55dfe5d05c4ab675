"""Fault injection (``make faults``): prove that nothing is lost under the faults of an exam
season. See ``faults/__main__.py`` for what it does and ``faults/README.md`` for how to read it."""

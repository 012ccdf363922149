"""The domain: messages, events, settings and errors. Pure Python, no I/O, no other layer."""

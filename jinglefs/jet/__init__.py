"""Jingle Encrypted Transports (XEP-0391) with the OMEMO key envelope (XEP-0396)."""

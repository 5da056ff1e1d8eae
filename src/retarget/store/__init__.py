"""Storage: Redis keys, server-side scripts and serialization, behind small classes."""

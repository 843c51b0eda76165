"""Benchmarks: passkey, needle in a haystack, evidence recall, speed and memory."""

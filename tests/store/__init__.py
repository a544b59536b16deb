"""Conformance tests of the store backends."""

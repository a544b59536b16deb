"""The examples in examples/, run for real."""

"""The pure core of bearer_grpc: tokens, keys, secrets, scopes and the error tree.

Nothing in this package imports ``grpc`` or a database driver, reads the clock or
touches the network; a test asserts it. The service, the interceptors and the CLI
translate between the outside world and these functions.
"""

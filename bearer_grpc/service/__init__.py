"""The TokenService: issuing, verifying and revoking tokens, and publishing keys.

``authority`` holds the rules (no grpc); ``servicer`` translates them to gRPC;
``server`` assembles a running ``bearer-grpc serve``.
"""

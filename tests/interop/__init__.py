"""Clients bearer_grpc did not write (gRPC's call credentials, Node) on protected servers."""

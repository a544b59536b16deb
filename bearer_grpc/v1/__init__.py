"""Generated protobuf modules (scripts/gen-protos); do not edit."""

"""Generated protobuf modules (examples/gen-protos); do not edit."""

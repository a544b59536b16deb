"""``python -m bearer_grpc`` runs the command line."""

import sys

from bearer_grpc.cli import main

sys.exit(main())

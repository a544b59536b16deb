"""``scripts/bench``: how fast bearer_grpc is on this machine, measured side by side.

One module per idea: :mod:`.stats` (medians, interleaving), :mod:`.procs` (server
subprocesses), :mod:`.load` (the closed-loop gRPC load generator), :mod:`.naive` (the
hand-written PyJWT interceptor a user would write), one module per section (:mod:`.micro`,
:mod:`.echo`, :mod:`.service`, :mod:`.revocation`, :mod:`.memory`, :mod:`.cli_startup`
...), :mod:`.report` (the table and its targets) and :mod:`.chart` (the PNG). :mod:`.cli`
ties them together.
"""

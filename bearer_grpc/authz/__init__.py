"""``bearer-grpc authz``: Envoy's external authorization server, backed by a verifier.

Envoy (alone, or in Istio) asks ``envoy.service.auth.v3.Authorization/Check`` before it
forwards each request; the answer follows the same policy and token rules as
``BearerServerInterceptor``, so services in any language behind Envoy are protected as a
Python service is, revocations pushed within a second included.

- ``bearer_grpc.core.ext_authz`` decides (pure rules: path to method, the one
  ``authorization`` header, allow or deny).
- ``servicer``: the thin ``Check`` servicer; it turns a decision into a
  ``CheckResponse`` (the refusal's status, ``ErrorInfo`` and challenge come from the
  one error table, ``bearer_grpc._status``) and keeps answers it can reuse.
- ``metrics``: counters of decisions by reason, served at ``/metrics``.
- ``server``: the running process: a ``grpc.aio`` server with health checking, the
  verifier's lifecycle, graceful stop on SIGTERM.

It needs the ``authz`` extra (``pip install 'bearer-grpc[authz]'``): Envoy's generated
API (``xds-protos``), Prometheus metrics and health checking, and no database.
"""

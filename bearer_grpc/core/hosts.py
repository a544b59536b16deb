"""Which hosts are this machine: the one rule for where plaintext may go.

Plain HTTP to an issuer, a plaintext ``--issuer`` URL, and a CLI channel without TLS are
each allowed only to a loopback host. The module imports nothing heavy, so the command
line can ask it before loading gRPC's TLS or any JWT code.
"""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an IP address, without brackets) is this machine's loopback."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

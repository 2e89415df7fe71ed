"""Ports on 127.0.0.1 for the processes nemo-batch starts itself (embedded servers, the local
stack, the emulator in tests and bench)."""

import socket


def free_port() -> int:
    """A port the system hands out as free now (another process may take it before we bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_is_free(port: int, *, reuse_address: bool = False) -> bool:
    """Can a server bind `port`? With `reuse_address`, as one that sets SO_REUSEADDR (Redis)
    sees it: a port whose last connections linger in TIME_WAIT is free."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        if reuse_address:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True

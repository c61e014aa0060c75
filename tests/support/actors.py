"""Who acts in tests that call the service layer directly: an admin on the server."""

from __future__ import annotations


class Admin:
    """An admin acting from the server (the audit log names them ``name``)."""

    operator = None
    sees_all = True

    def __init__(self, name: str = "test") -> None:
        self.name = name

    def sees(self, operator: str) -> bool:
        return True

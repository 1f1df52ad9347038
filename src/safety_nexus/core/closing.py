"""`with resource:` for anything that has a `close()`."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Closeable:
    """Mixin: the subclass provides `close()`; this makes it a context manager."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

"""The dataset base class: a read-only sequence of :class:`Sample`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import overload

import numpy as np

from semcomm.data.types import Sample


class ImageDataset(Sequence[Sample], ABC):
    """``len(ds)``, ``ds[i] -> Sample`` (negative indices count from the end), ``ds[a:b]``
    -> list of samples, iteration. Subclasses implement ``__len__`` and ``_load``."""

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def _load(self, index: int) -> Sample:
        """Sample ``index`` in [0, len(self))."""

    @overload
    def __getitem__(self, index: int) -> Sample: ...

    @overload
    def __getitem__(self, index: slice) -> list[Sample]: ...

    def __getitem__(self, index: int | slice) -> Sample | list[Sample]:
        if isinstance(index, slice):
            return [self._load(i) for i in range(*index.indices(len(self)))]
        if isinstance(index, bool) or not isinstance(index, int | np.integer):
            raise TypeError(f"index must be an integer or slice, got {type(index).__name__}")
        i = int(index) + len(self) if index < 0 else int(index)
        if not 0 <= i < len(self):
            raise IndexError(f"index {index} outside [{-len(self)}, {len(self)})")
        return self._load(i)

"""The periods every passage of a segment names (qabot.period.passage_periods), read once
when the segment is built.

A question that names a period ("năm 2023") compares it with the periods of every one of
its candidates; finding them in a candidate's text was, after its sentences, the largest
cost of a candidate seen for the first time. A segment stores them in passage_periods.npz:
per passage where its periods start (passages + 1), every period's (first, last) month, and
the qabot.period grammar they were read with. A segment without the file, or read with
another grammar, has its passages' periods read from their text.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qabot.index.sentence_tokens import concatenated_ranges
from qabot.period import GRAMMAR_VERSION, Months, passage_periods

FILE = "passage_periods.npz"


class PeriodWriter:
    """Collects the periods of a segment's passages, in row order."""

    def __init__(self) -> None:
        self._offsets = array("q", [0])
        self._months = array("i")

    def add(self, text: str, report_date: str | None) -> None:
        for first, last in passage_periods(text, report_date):
            self._months.extend((first, last))
        self._offsets.append(len(self._months) // 2)

    def save(self, folder: Path) -> None:
        with open(folder / FILE, "wb") as handle:
            np.savez(
                handle,
                offsets=np.frombuffer(self._offsets, dtype=np.int64),
                months=np.frombuffer(self._months, dtype=np.int32).reshape(-1, 2),
                grammar=np.array([GRAMMAR_VERSION]),
            )


@dataclass(frozen=True)
class PassagePeriods:
    offsets: np.ndarray  # (passages + 1,) int64
    months: np.ndarray  # (periods, 2) int32

    @classmethod
    def load(cls, folder: Path, passages: int) -> PassagePeriods | None:
        """None without the file or when it was read with another grammar; a ValueError
        when it does not fit the segment."""
        path = folder / FILE
        if not path.is_file():
            return None
        with np.load(path) as data:
            if int(data["grammar"][0]) != GRAMMAR_VERSION:
                return None
            offsets, months = data["offsets"], data["months"]
        if len(offsets) != passages + 1 or int(offsets[-1]) != len(months):
            raise ValueError("passage periods do not match the passages")
        return cls(offsets, months)

    def of(self, local_row: int) -> tuple[Months, ...]:
        found = self.months[int(self.offsets[local_row]) : int(self.offsets[local_row + 1])]
        return tuple((int(a), int(b)) for a, b in found.tolist())

    def match(self, local_rows: np.ndarray, period: Months) -> tuple[np.ndarray, np.ndarray]:
        """Per passage at ``local_rows``: whether it names a period, and whether one of its
        periods overlaps ``period`` (qabot.period.overlaps), for all of them at once."""
        first, last = self.offsets[local_rows], self.offsets[local_rows + 1]
        months = self.months[concatenated_ranges(first, last)]
        hit = (months[:, 0] <= period[1]) & (period[0] <= months[:, 1])
        owner = np.repeat(np.arange(len(local_rows)), last - first)
        overlapping = np.zeros(len(local_rows), dtype=bool)
        overlapping[owner[hit]] = True
        return last > first, overlapping

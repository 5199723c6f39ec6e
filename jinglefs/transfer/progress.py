"""Transfer rate and ETA.

Pure arithmetic: every method takes ``now`` (seconds, from any monotonic clock), so
the code is deterministic under test.  The façade turns the numbers into
:class:`jinglefs.events.Progress` events.
"""

from __future__ import annotations

from collections import deque


class RateMeter:
    """Smoothed throughput over a sliding time window.

    ``rate`` is (bytes done at the newest sample - at the oldest sample kept) divided
    by the time between them; samples older than ``window`` seconds (relative to the
    newest) are dropped, but the two newest are always kept.  A ``done`` smaller than
    the previous sample (a restart) clears the history.
    """

    def __init__(self, window: float = 5.0) -> None:
        if window <= 0:
            raise ValueError("window must be positive")
        self.window = window
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, now: float, done: int) -> None:
        if self._samples:
            last_t, last_done = self._samples[-1]
            if done < last_done or now < last_t:
                self._samples.clear()
            elif now == last_t:
                self._samples[-1] = (now, done)
                return
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.window:
            self._samples.popleft()

    @property
    def rate(self) -> float:
        """Bytes per second; 0.0 until two samples at different times exist."""
        if len(self._samples) < 2:
            return 0.0
        (t0, d0), (t1, d1) = self._samples[0], self._samples[-1]
        return (d1 - d0) / (t1 - t0)

    def eta(self, total: int) -> float | None:
        """Seconds until ``total`` bytes at the current rate; None if unknown (rate 0)."""
        if not self._samples:
            return None
        remaining = total - self._samples[-1][1]
        if remaining <= 0:
            return 0.0
        rate = self.rate
        return remaining / rate if rate > 0 else None

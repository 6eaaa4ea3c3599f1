"""When a supervised process exits: restart it after a backoff, or give up on a crash loop.

Pure: the supervisor (``launcher.py``) passes in how long the process ran and whether it ever
became ready. A process that was killed after serving for a while comes back after ``base``
seconds; one that keeps dying young (before it is ready, or within ``quick`` seconds) waits
twice as long each time, and after ``limit`` such exits in a row it is left stopped, since
restarting a process that cannot start (a port in use, a broken configuration) only fills the
log.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RestartPolicy:
    base: float = 0.5  # seconds before restarting a process that had been running fine
    cap: float = 30.0  # the longest wait between restarts
    quick: float = 5.0  # an exit this soon after starting counts towards a crash loop
    limit: int = 5  # quick exits in a row before giving up

    def after_exit(self, streak: int, ran: float, was_ready: bool) -> tuple[int, float | None]:
        """The new crash-loop streak and the delay before the next start (None: give up).

        ``streak`` counts the quick exits in a row before this one; ``ran`` is how long this
        run lasted; ``was_ready`` whether it answered its readiness check during the run.
        """
        if was_ready and ran >= self.quick:
            streak = 0
        else:
            streak += 1
            if streak >= self.limit:
                return streak, None
        return streak, min(self.cap, self.base * float(2 ** min(streak, 30)))

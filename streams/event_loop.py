"""The worker's event loop: uvloop unless ``AIGUILLAGE_EVENT_LOOP=asyncio``.

A worker spends a fifth of its CPU in the event loop itself (`aiguillage bench --profile`:
scheduling callbacks, selecting, writing to sockets), the part uvloop's libuv core takes
over. Set before the worker makes its loops (Faust's consumer runs in a thread with a loop of
its own, made by the same policy).
"""

from __future__ import annotations

import asyncio


def choisir(nom: str) -> None:
    """Make ``nom`` ("uvloop" or "asyncio") the loop of every loop made from now on."""
    if nom == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    else:
        asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())

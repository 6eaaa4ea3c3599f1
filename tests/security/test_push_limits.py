"""Change notifications cannot be turned against the server: long-polls are capped per
account like notification sockets, and a WebSocket token that cannot even be encoded is a
clean 4401 close, not a crashed handler."""

from __future__ import annotations

import asyncio
import time

import httpx
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.harness import TestCluster
from tests.security.conftest import new_user

LONGPOLLS_PER_USER = 20  # the default of longpolls_per_user


def test_long_polls_are_capped_per_account(sec_cluster: TestCluster,
                                           client: httpx.Client) -> None:
    user, other = new_user(client, "poll"), new_user(client, "poll")
    cursor = client.get("/api/v1/changes", headers=user.auth).json()["cursor"]
    other_cursor = client.get("/api/v1/changes", headers=other.auth).json()["cursor"]
    hold = 4.0

    async def scenario() -> tuple[list[int], int, int, int]:
        limits = httpx.Limits(max_connections=LONGPOLLS_PER_USER + 10)
        async with httpx.AsyncClient(base_url=sec_cluster.url, timeout=60,
                                     limits=limits) as c:
            def wait(auth: dict[str, str], cur: str, timeout: float) -> asyncio.Task[int]:
                async def call() -> int:
                    r = await c.get("/api/v1/changes/wait", headers=auth,
                                    params={"cursor": cur, "timeout": timeout})
                    return r.status_code
                return asyncio.create_task(call())

            held = [wait(user.auth, cursor, hold) for _ in range(LONGPOLLS_PER_USER)]
            await asyncio.sleep(1.5)  # every held poll is in by now
            started = time.monotonic()
            extra = await wait(user.auth, cursor, hold)
            refused_after = time.monotonic() - started
            # Another account is not affected by this one's polls.
            others = await wait(other.auth, other_cursor, 0.2)
            codes = await asyncio.gather(*held)
            # Once they end, the account may poll again.
            again = await wait(user.auth, cursor, 0.2)
            assert refused_after < hold / 2, "the extra poll waited instead of being refused"
            return codes, extra, others, again

    codes, extra, others, again = asyncio.run(scenario())
    assert codes == [200] * LONGPOLLS_PER_USER
    assert extra == 429
    assert (others, again) == (200, 200)


def test_a_websocket_token_that_cannot_be_encoded_is_a_clean_close(
        sec_cluster: TestCluster) -> None:
    url = sec_cluster.url.replace("http://", "ws://") + "/api/v1/notifications"
    for message in ('{"token": "\\ud800"}', '{"token": "\\udfff\\ud800x"}',
                    '{"token": "t\\u00e9st"}'):
        with connect(url, open_timeout=5, close_timeout=2) as ws:
            ws.send(message)
            try:
                ws.recv(timeout=5)
                code = None
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd else None
        assert code == 4401, (message, code)
    log = (sec_cluster.tmp / "logs" / "api.log").read_text(errors="replace")
    assert "UnicodeEncodeError" not in log

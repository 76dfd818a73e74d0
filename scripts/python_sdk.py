"""Drives ringmcp with the official Python MCP SDK client over its three transports.

Usage: python_sdk.py BASE_URL [--deflate]   (e.g. http://127.0.0.1:8080)
  --deflate  the server runs with --ws-deflate: only the WebSocket transport is exercised, the
             extension must have been negotiated (the SDK's `websockets` offers it by
             default), and a 16 KiB tool result must arrive through it.
Exits non-zero on the first thing a real client would trip over.
"""
import asyncio
import sys

from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamablehttp_client
from mcp.client.websocket import websocket_client
from websockets.asyncio.client import connect


async def exercise(name, session):
    init = await session.initialize()
    tools = await session.list_tools()
    names = {t.name for t in tools.tools}
    assert "echo" in names, f"{name}: echo missing from {sorted(names)}"
    result = await session.call_tool("echo", {"message": f"hello over {name}"})
    text = result.content[0].text
    assert text == f"hello over {name}", f"{name}: echo returned {text!r}"
    assert not result.isError
    resources = await session.list_resources()
    prompts = await session.list_prompts()
    print(f"{name}: protocol {init.protocolVersion}, {len(names)} tools, "
          f"{len(resources.resources)} resources, {len(prompts.prompts)} prompts, echo ok")


async def deflate(base):
    ws = base.replace("http://", "ws://")
    # What the SDK's websocket_client opens, asked for what the server agreed to.
    async with connect(f"{ws}/mcp", subprotocols=["mcp"]) as conn:
        agreed = conn.response.headers.get("Sec-WebSocket-Extensions", "")
    assert agreed.startswith("permessage-deflate"), f"not negotiated: {agreed!r}"
    print(f"websocket: negotiated {agreed!r}")
    async with websocket_client(f"{ws}/mcp") as (read, write):
        async with ClientSession(read, write) as session:
            await exercise("websocket+deflate", session)
            result = await session.call_tool("payload", {"bytes": 16384})
            assert len(result.content[0].text) == 16384, "payload: wrong length"
            print("websocket+deflate: 16 KiB tool result ok")


async def main(base):
    async with streamablehttp_client(f"{base}/mcp") as (read, write, _):
        async with ClientSession(read, write) as session:
            await exercise("streamable-http", session)
    async with sse_client(f"{base}/sse") as (read, write):
        async with ClientSession(read, write) as session:
            await exercise("legacy-sse", session)
    ws = base.replace("http://", "ws://")
    async with websocket_client(f"{ws}/mcp") as (read, write):
        async with ClientSession(read, write) as session:
            await exercise("websocket", session)


if __name__ == "__main__":
    run = deflate if sys.argv[2:] == ["--deflate"] else main
    asyncio.run(asyncio.wait_for(run(sys.argv[1]), timeout=60))

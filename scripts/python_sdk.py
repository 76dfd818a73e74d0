"""Drives ringmcp with the official Python MCP SDK client over its three transports.

Usage: python_sdk.py BASE_URL   (e.g. http://127.0.0.1:8080)
Exits non-zero on the first thing a real client would trip over.
"""
import asyncio
import sys

from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamablehttp_client
from mcp.client.websocket import websocket_client


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
    asyncio.run(asyncio.wait_for(main(sys.argv[1]), timeout=60))

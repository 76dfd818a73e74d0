"""Calls each example server (examples/*.rs) with the official Python SDK 1.x client over
Streamable HTTP, the way their docs say they behave.

Usage: examples.py NAME URL   (NAME: calculator, counter or confirm; URL ends in /mcp)
Exits non-zero on the first thing that is not so.
"""
import asyncio
import sys

from mcp import ClientSession, types
from mcp.client.streamable_http import streamablehttp_client


def text(result):
    return result.content[0].text


async def calculator(session):
    tools = {t.name: t for t in (await session.list_tools()).tools}
    add = tools["add"]
    assert add.inputSchema["required"] == ["a", "b"], add.inputSchema
    assert add.inputSchema["properties"]["a"]["type"] == "number", add.inputSchema
    assert add.outputSchema["properties"]["value"]["type"] == "number", add.outputSchema
    # The SDK validates structuredContent against the listed outputSchema (jsonschema).
    result = await session.call_tool("add", {"a": 1.5, "b": 2})
    assert not result.isError and result.structuredContent == {"value": 3.5}, result
    result = await session.call_tool("add", {"a": 1, "b": "x"})
    assert result.isError, result
    assert text(result) == 'Invalid arguments: b: invalid type: string "x", expected f64', result
    result = await session.call_tool("divide", {"a": 1, "b": 0})
    assert result.isError and "division by zero" in text(result), result
    result = await session.call_tool("divide", {"a": 1, "b": 4})
    assert result.structuredContent == {"value": 0.25}, result
    print("calculator: schemas from the types, 1.5 + 2 = 3.5, a wrong type and 1/0 are tool errors")


async def counter(session, updates):
    await session.subscribe_resource("counter://value")
    before = int(text_of(await session.read_resource("counter://value")))
    result = await session.call_tool("increment", {"by": 2})
    assert result.structuredContent == {"value": before + 2}, result
    uri = await asyncio.wait_for(updates.get(), timeout=5)
    assert uri == "counter://value", uri
    after = int(text_of(await session.read_resource("counter://value")))
    assert after == before + 2, (before, after)
    result = await session.call_tool("increment", {"by": 0})
    assert result.isError and "at least 1" in text(result), result
    result = await session.call_tool("increment", {})
    assert result.structuredContent == {"value": before + 3}, result
    print(f"counter: {before} -> {after}, resources/updated received, by 0 refused")


def text_of(read):
    return read.contents[0].text


async def confirm(session, answers, progress):
    for action, confirmed, deleted in [("accept", True, 4), ("accept", False, 0), ("decline", None, 0)]:
        answers.append((action, confirmed))
        progress.clear()

        async def on_progress(done, total, message):
            progress.append((done, total, message))

        result = await session.call_tool("clean_up", {"items": 4}, progress_callback=on_progress)
        assert not result.isError, result
        assert result.structuredContent == {"deleted": deleted, "action": action}, result
        assert [p[0] for p in progress] == [1, 2, 3, 4], progress
        assert all(p[1] == 4 and p[2] == "counting" for p in progress), progress
    result = await session.call_tool("clean_up", {"items": 0})
    assert result.isError and "from 1 to 100" in text(result), result
    print("confirm: progress 1..4 of 4, deleted only on an accept with confirm: true")


async def main(name, url):
    updates = asyncio.Queue()
    answers = []
    progress = []

    async def on_message(message):
        if isinstance(message, types.ServerNotification) and isinstance(
            message.root, types.ResourceUpdatedNotification
        ):
            await updates.put(str(message.root.params.uri))

    async def on_elicit(context, params):
        assert params.message == "Delete 4 old items?", params
        action, confirmed = answers.pop(0)
        content = None if confirmed is None else {"confirm": confirmed}
        return types.ElicitResult(action=action, content=content)

    async with streamablehttp_client(url) as (read, write, _):
        async with ClientSession(
            read, write, message_handler=on_message, elicitation_callback=on_elicit
        ) as session:
            init = await session.initialize()
            assert init.serverInfo.name == name, init.serverInfo
            if name == "calculator":
                await calculator(session)
            elif name == "counter":
                await counter(session, updates)
            else:
                await confirm(session, answers, progress)


if __name__ == "__main__":
    asyncio.run(asyncio.wait_for(main(sys.argv[1], sys.argv[2]), timeout=60))

"""The official Python MCP SDK 2.x client against ringmcp: MCP 2026-07-28, no fallback.

Usage: python_sdk2.py MCP_URL   (e.g. http://127.0.0.1:8080/mcp)
The 2.x client probes server/discover and falls back to initialize when a server does not
speak the stateless revision; this fails unless the probe succeeded.
"""
import asyncio
import sys

from mcp import Client


async def main(url):
    async with Client(url) as client:
        session = client.session
        assert session.discover_result is not None, "the client fell back to initialize"
        assert session.initialize_result is None, "the client fell back to initialize"
        versions = session.discover_result.supported_versions
        assert "2026-07-28" in versions, f"supportedVersions: {versions}"
        tools = await client.list_tools()
        names = {t.name for t in tools.tools}
        assert "echo" in names, f"echo missing from {sorted(names)}"
        result = await client.call_tool("echo", {"message": "hello over 2026-07-28"})
        assert not result.is_error and result.content[0].text == "hello over 2026-07-28", result
        progress = []

        async def on_progress(value, total, message):
            progress.append(value)

        result = await client.call_tool(
            "test_tool_with_progress", {}, progress_callback=on_progress
        )
        assert not result.is_error, result
        assert progress == [0.0, 50.0, 100.0], f"progress: {progress}"
        prompts = await client.list_prompts()
        resources = await client.list_resources()
        print(f"python sdk 2.x: 2026-07-28 via server/discover, {len(names)} tools, "
              f"{len(resources.resources)} resources, {len(prompts.prompts)} prompts, "
              f"echo ok, {len(progress)} progress notifications")


asyncio.run(main(sys.argv[1]))

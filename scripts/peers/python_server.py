"""A peer server for ringmcp-load comparisons, built only from the official Python MCP SDK
(PyPI `mcp`) and what it depends on, on 127.0.0.1:PORT:

  /mcp    MCP Streamable HTTP (FastMCP, stateful sessions), and on a WebSocket upgrade
          MCP over WebSocket (the SDK's `websocket_server`, subprotocol "mcp"), as ringmcp
  /echo   a plain WebSocket echo (Starlette)

Every MCP endpoint has the tool the load generator calls: `echo(message) -> message`.
Usage: python_server.py PORT
"""

import sys

import uvicorn
from mcp.server.fastmcp import FastMCP
from mcp.server.websocket import websocket_server
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

mcp = FastMCP("python-sdk-peer")


@mcp.tool()
def echo(message: str) -> str:
    """Returns its message."""
    return message


async def mcp_over_websocket(websocket: WebSocket) -> None:
    server = mcp._mcp_server  # FastMCP exposes no public handle for other transports
    async with websocket_server(websocket.scope, websocket.receive, websocket.send) as (read, write):
        await server.run(read, write, server.create_initialization_options())


async def plain_echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await websocket.send_text(message["text"])
            else:
                await websocket.send_bytes(message["bytes"])
    except WebSocketDisconnect:
        return


app = mcp.streamable_http_app()
# Starlette matches HTTP routes to HTTP requests only, so /mcp serves both transports.
app.router.routes.append(WebSocketRoute("/mcp", mcp_over_websocket))
app.router.routes.append(WebSocketRoute("/echo", plain_echo))

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", ws="websockets-sansio")

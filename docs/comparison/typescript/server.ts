// The comparison server (docs/comparison.md) written with the TypeScript SDK v2
// (@modelcontextprotocol/server 2.4.0): `add`, the subscribable resource counter://value with
// `increment`, and `clean_up` (progress, then elicitation).
//
// npx tsx server.ts --bind 127.0.0.1:PORT   (endpoint /mcp)
//
// Served the 2025-era sessionful way (one McpServer and transport per Mcp-Session-Id): the
// SDK's docs say push-style elicitation and resources/subscribe need a session, which its
// per-request createMcpHandler does not keep for 2025-era clients.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';

import { localhostHostValidation, localhostOriginValidation, NodeStreamableHTTPServerTransport } from '@modelcontextprotocol/node';
import { isInitializeRequest, McpServer } from '@modelcontextprotocol/server';
import * as z from 'zod/v4';

const COUNTER = 'counter://value';
let count = 0;
// Sessions subscribed to counter://value (resources/subscribe bookkeeping is the server's).
const subscribers = new Set<McpServer>();

function structured<T extends Record<string, unknown>>(value: T) {
    return { content: [{ type: 'text' as const, text: JSON.stringify(value) }], structuredContent: value };
}

function buildServer(): McpServer {
    const server = new McpServer({ name: 'comparison', version: '1.0.0' }, { capabilities: { resources: { subscribe: true } } });

    server.registerTool(
        'add',
        {
            description: 'Adds b to a',
            inputSchema: z.object({ a: z.number(), b: z.number() }),
            outputSchema: z.object({ value: z.number() })
        },
        async ({ a, b }) => structured({ value: a + b })
    );

    server.registerResource('counter', COUNTER, { mimeType: 'text/plain' }, async uri => ({
        contents: [{ uri: uri.href, mimeType: 'text/plain', text: String(count) }]
    }));
    server.server.setRequestHandler('resources/subscribe', request => {
        if (request.params.uri === COUNTER) subscribers.add(server);
        return {};
    });
    server.server.setRequestHandler('resources/unsubscribe', request => {
        if (request.params.uri === COUNTER) subscribers.delete(server);
        return {};
    });

    server.registerTool(
        'increment',
        {
            description: 'Adds `by` to counter://value',
            inputSchema: z.object({ by: z.number().int().min(1, 'by must be at least 1').default(1) }),
            outputSchema: z.object({ value: z.number().int() })
        },
        async ({ by }) => {
            count += by;
            for (const subscriber of subscribers) {
                await subscriber.server.sendResourceUpdated({ uri: COUNTER }).catch(() => subscribers.delete(subscriber));
            }
            return structured({ value: count });
        }
    );

    server.registerTool(
        'clean_up',
        {
            description: 'Deletes old items after the user confirms',
            inputSchema: z.object({ items: z.number().int().min(1).max(100) }),
            outputSchema: z.object({ deleted: z.number().int(), action: z.string() })
        },
        async ({ items }, ctx) => {
            const progressToken = ctx.mcpReq._meta?.progressToken;
            for (let done = 1; done <= items; done++) {
                if (progressToken !== undefined) {
                    await ctx.mcpReq.notify({
                        method: 'notifications/progress',
                        params: { progressToken, progress: done, total: items, message: 'counting' }
                    });
                }
                await new Promise(resolve => setTimeout(resolve, 5));
            }
            const answer = await ctx.mcpReq.elicitInput({
                mode: 'form',
                message: `Delete ${items} old items?`,
                requestedSchema: { type: 'object', properties: { confirm: { type: 'boolean' } }, required: ['confirm'] }
            });
            const confirmed = answer.action === 'accept' && answer.content?.confirm === true;
            return structured({ deleted: confirmed ? items : 0, action: answer.action });
        }
    );

    return server;
}

// One transport (and McpServer) per session, found by the Mcp-Session-Id header.
const sessions = new Map<string, NodeStreamableHTTPServerTransport>();

async function readJson(req: IncomingMessage): Promise<unknown> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

const validateHost = localhostHostValidation();
const validateOrigin = localhostOriginValidation();
const bind = process.argv[2] === '--bind' ? process.argv[3] : '127.0.0.1:8080';
const colon = bind.lastIndexOf(':');

createServer(async (req, res) => {
    if (!validateHost(req, res) || !validateOrigin(req, res)) return;
    if (req.url?.split('?')[0] !== '/mcp') {
        res.writeHead(404).end();
        return;
    }
    let body: unknown;
    if (req.method === 'POST') {
        try {
            body = await readJson(req);
        } catch {
            res.writeHead(400).end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32_700, message: 'Parse error' }, id: null }));
            return;
        }
    }
    const sid = req.headers['mcp-session-id'] as string | undefined;
    let transport = sid ? sessions.get(sid) : undefined;
    if (!transport && !sid && isInitializeRequest(body)) {
        const server = buildServer();
        const created = new NodeStreamableHTTPServerTransport({
            sessionIdGenerator: () => randomUUID(),
            onsessioninitialized: id => void sessions.set(id, created)
        });
        created.onclose = () => {
            if (created.sessionId) sessions.delete(created.sessionId);
            subscribers.delete(server);
        };
        await server.connect(created);
        transport = created;
    }
    if (!transport) {
        const error = sid ? { code: -32_001, message: 'Session not found' } : { code: -32_000, message: 'Session ID required' };
        res.writeHead(sid ? 404 : 400, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', error, id: null }));
        return;
    }
    await transport.handleRequest(req, res, body);
}).listen(Number(bind.slice(colon + 1)), bind.slice(0, colon), () => {
    console.log(`MCP on http://${bind}/mcp`);
});

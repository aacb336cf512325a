// Drive the gateway's backend aggregation with the official TypeScript MCP SDK client
// (@modelcontextprotocol/sdk, exact pin in conformance/package.json) over
// StreamableHTTPClientTransport. That SDK speaks the 2025 revisions (initialize handshake and
// Mcp-Session-Id), so backend tools must work end to end.
//
// Usage: node client.mjs http://127.0.0.1:PORT/mcp
//
// Each check prints PASS or FAIL; the last line is `N passed, M failed`; exit status 1 if M > 0.

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';

const url = process.argv[2];
if (!url) {
  console.error('usage: node client.mjs URL');
  process.exit(2);
}

let passed = 0;
let failed = 0;
function check(name, ok, detail = '') {
  if (ok) {
    passed += 1;
    console.log(`PASS ${name}`);
  } else {
    failed += 1;
    console.log(`FAIL ${name}${detail ? ': ' + detail : ''}`);
  }
  return ok;
}
const texts = (r) => (r.content ?? []).filter((c) => c.type === 'text').map((c) => c.text);
const json = (v) => JSON.stringify(v);

// A hung gateway or backend must not hang the suite.
const watchdog = setTimeout(() => {
  check('[ts-sdk] session finished within 30 s', false, 'timed out');
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(1);
}, 30_000);

const p = '[ts-sdk]';
const LOCAL = 'local_echo';
const BACKEND_TOOLS = ['stateful__echo', 'stateful__add', 'stateless__echo', 'stateless__add'];
// Asks the client for a name by elicitation (over the session's SSE answer stream).
const ELICITING = 'stateful__greet';
const TEXT = 'quote " backslash \\ newline \n unicode \u00e9\u4e2d';

async function callCheck(client, name, args, wantText, wantStructured) {
  const label = `${p} ${name}(${json(args)})`;
  let r;
  try {
    r = await client.callTool({ name, arguments: args });
  } catch (e) {
    check(label, false, `threw ${e?.code ?? ''} ${e?.message ?? e}`);
    return;
  }
  check(`${label} returns ${json([wantText])} (text) and isError false`,
    json(texts(r)) === json([wantText]) && !r.isError, `isError=${r.isError} content=${json(r.content)}`);
  check(`${label} structuredContent is relayed`,
    json(r.structuredContent) === json({ result: wantStructured }), `structuredContent=${json(r.structuredContent)}`);
}

async function main() {
  const client = new Client(
    { name: 'portcullis-conformance-ts', version: '1.0.0' },
    { capabilities: { elicitation: { form: {} } } },
  );
  const asked = [];
  client.setRequestHandler(ElicitRequestSchema, async (request) => {
    asked.push(request.params.message);
    return { action: 'accept', content: { name: 'Ada' } };
  });
  const transport = new StreamableHTTPClientTransport(new URL(url));
  await client.connect(transport);
  try {
    check(`${p} initialize negotiated 2025-11-25`, transport.protocolVersion === '2025-11-25',
      `got ${transport.protocolVersion}`);
    check(`${p} session id issued`, typeof transport.sessionId === 'string' && transport.sessionId.length > 0,
      `got ${transport.sessionId}`);
    const info = client.getServerVersion();
    check(`${p} serverInfo has name and version`, !!info?.name && !!info?.version, json(info));

    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name).sort();
    check(`${p} tools/list has the local tool ${LOCAL}`, names.includes(LOCAL), json(names));
    for (const n of BACKEND_TOOLS) check(`${p} tools/list has ${n}`, names.includes(n), json(names));
    check(`${p} tools/list has no excluded tool (*hidden*)`, !names.some((n) => n.includes('hidden')), json(names));
    check(`${p} tools/list has nothing else`,
      names.every((n) => n === LOCAL || n === ELICITING || BACKEND_TOOLS.includes(n)), json(names));

    await callCheck(client, 'stateful__echo', { text: TEXT }, TEXT, TEXT);
    await callCheck(client, 'stateless__add', { a: 2, b: 40 }, '42', 42);

    try {
      const r = await client.callTool({ name: ELICITING, arguments: {} });
      check(`${p} ${ELICITING}() asks the client (elicitation) and returns 'Hello, Ada!'`,
        json(texts(r)) === json(['Hello, Ada!']) && json(asked) === json(['What is your name?']),
        `content=${json(r.content)} asked=${json(asked)}`);
    } catch (e) {
      check(`${p} ${ELICITING}() asks the client (elicitation)`, false, `threw ${e?.code ?? ''} ${e?.message ?? e}`);
    }

    let excluded;
    try {
      const r = await client.callTool({ name: 'stateful__hidden', arguments: {} });
      excluded = r.isError === true && !texts(r).some((t) => t.includes('was reached'));
      if (!excluded) check(`${p} excluded tool stateful__hidden is an error`, false, `result ${json(r)}`);
    } catch (e) {
      excluded = true;
    }
    if (excluded) check(`${p} excluded tool stateful__hidden is an error`, true);
  } finally {
    await client.close();
  }
}

try {
  await main();
  check(`${p} session ran to completion`, true);
} catch (e) {
  check(`${p} session ran to completion`, false, e?.stack ?? String(e));
}
clearTimeout(watchdog);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);

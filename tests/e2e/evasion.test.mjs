// Attempts to get a tool call past clampd's check, or a withheld tool description past
// discovery, by spelling a message differently: JSON escapes, batches, duplicate keys,
// notification-shaped calls, hybrid messages. Whatever clampd answers, the downstream must never
// receive a call to a tool that is not allowed, and the client must never see a withheld tool.
import { describe, it, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { LinePeer, tmpDir, NODE, FIXTURES, sleep, HEX64 } from "./lib.mjs";

const RAW = path.join(FIXTURES, "raw.mjs");
const peers = [];
after(() => {
  for (const p of peers) p.kill();
});

function parseLines(buf) {
  const out = [];
  for (const l of buf.toString("utf8").split("\n")) {
    if (!l) continue;
    try {
      out.push(JSON.parse(l)); // last duplicate key wins, as in most servers' JSON parsers
    } catch {}
  }
  return out.flatMap((m) => (Array.isArray(m) ? m : [m]));
}

// The downstream command line is part of the pin key: sessions meant to share pins must pass the
// same log path.
async function session(stateDir, stateFile, log = path.join(tmpDir(), "received.log")) {
  const argv = [NODE, RAW, "--log", log];
  if (stateFile) argv.push("--state", stateFile);
  const peer = LinePeer.clampd(argv, { stateDir });
  peers.push(peer);
  await peer.initialize();
  const received = () => parseLines(fs.existsSync(log) ? fs.readFileSync(log) : Buffer.alloc(0));
  return { peer, received };
}

describe("tool calls in disguise are checked", () => {
  const evilCalls = (received) => received().filter((m) => m.method === "tools/call" && String(m.params?.name).startsWith("evil"));

  const cases = [
    ["escaped method name", '{"jsonrpc":"2.0","id":31,"method":"tools\\u002fcall","params":{"name":"evil","arguments":{}}}', 31],
    ["escaped slash in method", '{"jsonrpc":"2.0","id":32,"method":"tools\\/call","params":{"name":"evil","arguments":{}}}', 32],
    ["escaped tool name", '{"jsonrpc":"2.0","id":33,"method":"tools/call","params":{"name":"\\u0065vil","arguments":{}}}', 33],
    ["escaped params key", '{"jsonrpc":"2.0","id":34,"method":"tools/call","p\\u0061rams":{"name":"evil","arguments":{}}}', 34],
    ["call inside a batch", '[{"jsonrpc":"2.0","id":35,"method":"tools/call","params":{"name":"evil","arguments":{}}}]', 35],
    ["duplicate params (last wins downstream)", '{"jsonrpc":"2.0","id":36,"method":"tools/call","params":{"name":"fixed","arguments":{}},"params":{"name":"evil","arguments":{}}}', 36],
    ["duplicate tool name (last wins downstream)", '{"jsonrpc":"2.0","id":37,"method":"tools/call","params":{"name":"fixed","name":"evil","arguments":{}}}', 37],
    ["duplicate method", '{"jsonrpc":"2.0","id":38,"method":"ping","method":"tools/call","params":{"name":"evil","arguments":{}}}', 38],
    ["string id with escapes", '{"jsonrpc":"2.0","id":"r\\u00e9q-39","method":"tools/call","params":{"name":"evil","arguments":{}}}', "réq-39"],
    ["call without id (notification-shaped)", '{"jsonrpc":"2.0","method":"tools/call","params":{"name":"evil","arguments":{}}}', undefined],
    ["call with id null", '{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"evil","arguments":{}}}', null],
    // a C server that stops keys at NUL reads the first key as "name"
    ["over-long key with a NUL beside name", '{"jsonrpc":"2.0","id":40,"method":"tools/call","params":{"name\\u0000' + "A".repeat(300) + '":"evil","name":"fixed","arguments":{}}}', 40],
    // Go's encoding/json reads "Name" as "name" (case-insensitive, last wins)
    ["case-variant Name key", '{"jsonrpc":"2.0","id":41,"method":"tools/call","params":{"name":"fixed","Name":"evil","arguments":{}}}', 41],
    ["a key that folds to arguments (argument + U+017F) beside arguments", '{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"fixed","arguments":{},"argument\\u017f":{"x":1}}}', 42],
  ];

  for (const [label, line, id] of cases) {
    it(label, async () => {
      const { peer, received } = await session(tmpDir());
      await peer.request("tools/list", {});
      await peer.send(line);
      if (id === undefined) {
        await sleep(500);
      } else if (id === null) {
        await peer.waitFor((m) => m.id === null && (m.error || m.result), { what: "an answer with id null" });
      } else {
        const r = await peer.response(id);
        const denied = r.msg.result?.isError === true && /was BLOCKED/.test(r.msg.result.content?.[0]?.text);
        assert.ok(denied || r.msg.error, `answered with a denial or an error, got ${JSON.stringify(r.msg)}`);
      }
      // a later, ordinary exchange makes sure everything sent before it has been relayed
      await peer.request("ping");
      assert.deepEqual(evilCalls(received), [], "the downstream never received the call");
    });
  }

  it("the real tool still works after all that (control)", async () => {
    const { peer, received } = await session(tmpDir());
    await peer.request("tools/list", {});
    const r = await peer.request("tools/call", { name: "fixed", arguments: {} });
    assert.equal(r.result.structuredContent.zeta, 1);
    assert.equal(received().filter((m) => m.method === "tools/call" && m.params.name === "fixed").length, 1);
  });
});

describe("tools/list answers in disguise are inspected", () => {
  const MARKER = "POISONED-DESCRIPTION-MARKER";

  for (const style of ["batch", "escaped", "hybrid-error", "hybrid-method"]) {
    it(`a rug-pulled description sent as a "${style}" tools/list answer does not reach the client`, async () => {
      const stateDir = tmpDir();
      const stateFile = path.join(tmpDir(), "raw-state.json");
      const log = path.join(tmpDir(), "received.log");
      fs.writeFileSync(stateFile, JSON.stringify({ listStyle: "plain" }));
      {
        const { peer } = await session(stateDir, stateFile, log);
        const list = await peer.request("tools/list", {});
        assert.match(list.result.tools[0]._meta["clampd/contract_hash"], HEX64);
        peer.closeStdin();
        await peer.waitExit(10000);
      }
      fs.writeFileSync(stateFile, JSON.stringify({ listStyle: style, description: `Returns a fixed result. ${MARKER}` }));
      const { peer } = await session(stateDir, stateFile, log);
      await peer.send({ jsonrpc: "2.0", id: 61, method: "tools/list", params: {} });
      // an answer for id 61, however it is shaped (or none), then a ping to flush
      const answer = await peer.waitFor((m) => (Array.isArray(m) ? m : [m]).some((x) => x.id === 61), { timeout: 3000 }).catch(() => null);
      await peer.request("ping");
      for (let i = 0; i < peer.lines.length; i++) {
        assert.ok(!peer.lines[i].includes(MARKER), `the withheld description reached the client: ${peer.lines[i].toString().slice(0, 300)}`);
      }
      // and a call to the changed tool is still denied
      const r = await peer.request("tools/call", { name: "fixed", arguments: {} });
      assert.equal(r.result?.isError, true, JSON.stringify(r));
      assert.match(r.result.content[0].text, /was BLOCKED/);
      if (style === "batch" || style === "escaped") {
        // valid JSON-RPC answers: the client must get one, without the withheld tool
        assert.ok(answer, `the client got an answer to its tools/list; clampd stderr:\n${peer.stderr()}`);
        const tools = (Array.isArray(answer.msg) ? answer.msg : [answer.msg]).find((x) => x.id === 61).result.tools;
        assert.deepEqual(tools.map((t) => t.name), ["echo", "ask", "notify-odd"]);
      }
    });
  }
});

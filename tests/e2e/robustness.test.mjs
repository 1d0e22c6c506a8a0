// Bad input, junk, crashes, process lifecycle, byte faithfulness and big messages.
import { describe, it, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { createHash } from "node:crypto";
import {
  connect,
  LinePeer,
  tmpDir,
  NODE,
  FIXTURES,
  requireClampd,
  pgidOf,
  alive,
  liveMembersOfGroup,
  waitFor,
  waitForFile,
  killQuietly,
  sleep,
} from "./lib.mjs";
import { FIXED_RESULT, ODD_REQUEST, ODD_NOTIFICATION } from "./fixtures/raw-lines.mjs";

const RAW = path.join(FIXTURES, "raw.mjs");
const peers = [];
function clampdPeer(argv, opts = {}) {
  const p = LinePeer.clampd(argv, { stateDir: tmpDir(), ...opts });
  peers.push(p);
  return p;
}
after(() => {
  for (const p of peers) p.kill();
});

/** A clampd relaying to the raw fixture, with the fixture's received-lines log. */
async function rawSession() {
  const dir = tmpDir();
  const log = path.join(dir, "received.log");
  const peer = clampdPeer([NODE, RAW, "--log", log]);
  const init = await peer.initialize();
  assert.equal(init.result?.serverInfo?.name, "raw-fixture", JSON.stringify(init));
  const list = await peer.request("tools/list", {});
  assert.ok(list.result.tools.length >= 4);
  const received = () => (fs.existsSync(log) ? fs.readFileSync(log) : Buffer.alloc(0));
  const receivedLines = () => {
    const b = received();
    const out = [];
    let s = 0;
    for (let i = 0; i < b.length; i++) if (b[i] === 10) out.push(b.subarray(s, i)), (s = i + 1);
    return out;
  };
  return { peer, received, receivedLines };
}

const isParseError = (m) => m.id === null && m.error?.code === -32700;

describe("bad input from the client", () => {
  it("a line that is not JSON gets -32700 with id null and is not forwarded", async () => {
    const { peer, receivedLines } = await rawSession();
    const bad = [
      Buffer.from("this is not json"),
      Buffer.from('{"jsonrpc":"2.0","id":5,"method":"ping"'),
      Buffer.from('{"jsonrpc":"2.0","id":6,"method":"ping"} trailing'),
      Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]), // {"\xff\xfe":1}: not UTF-8
    ];
    for (const b of bad) {
      await peer.send(b);
      const { msg } = await peer.waitFor(isParseError, { what: `-32700 for ${JSON.stringify(b.toString("latin1"))}` });
      assert.equal(msg.jsonrpc, "2.0");
      assert.equal(typeof msg.error.message, "string");
    }
    // the session goes on
    await peer.send('{"jsonrpc":"2.0","id":77,"method":"ping"}');
    const pong = await peer.response(77);
    assert.deepEqual(pong.msg.result, {});
    // the downstream saw the ping but none of the bad lines
    const got = receivedLines().map((l) => l.toString("latin1"));
    assert.ok(got.some((l) => l.includes('"id":77')), "the ping was forwarded");
    for (const b of bad) assert.ok(!got.includes(b.toString("latin1")), `not forwarded: ${b.toString("latin1")}`);
    assert.ok(!got.some((l) => l.includes("not json") || l.includes('"id":5') || l.includes('"id":6')));
    // no stray output for the bad lines beyond one error each
    const parseErrors = peer.lines.map((_, i) => peer.parsed(i)).filter((m) => m && isParseError(m));
    assert.equal(parseErrors.length, bad.length);
  });
});

describe("junk from the downstream", () => {
  const JUNK = [NODE, path.join(FIXTURES, "junk.mjs")];

  it("junk lines are dropped (logged on stderr) while valid messages pass", async () => {
    const peer = clampdPeer(JUNK);
    const init = await peer.initialize();
    assert.equal(init.result?.serverInfo?.name, "junk-fixture");
    const list = await peer.request("tools/list", {});
    assert.deepEqual(list.result.tools.map((t) => t.name), ["hello"]);
    const call = await peer.request("tools/call", { name: "hello", arguments: { who: "world" } });
    assert.deepEqual(call.result, { content: [{ type: "text", text: "hello world" }] });
    const pong = await peer.request("ping");
    assert.deepEqual(pong.result, {});
    await sleep(200);
    // every line clampd wrote is JSON; nothing forged or junky got through
    for (let i = 0; i < peer.lines.length; i++) {
      assert.notEqual(peer.parsed(i), undefined, `stdout line ${i} is JSON: ${peer.lines[i].toString("latin1").slice(0, 100)}`);
      assert.ok(!peer.lines[i].includes("FORGED"), "the forged response with trailing garbage was dropped");
    }
    // exactly one response per request (initialize, tools/list, tools/call, ping)
    assert.equal(peer.lines.length, 4, peer.lines.map(String).join("\n"));
    assert.match(peer.stderr(), /\S/, "clampd logged the junk on stderr (the fixture itself writes no stderr)");
  });

  it("the SDK client works through clampd against the junk server", async () => {
    const s = await connect({ clampd: JUNK, stateDir: tmpDir() });
    try {
      const { tools } = await s.client.listTools();
      assert.deepEqual(tools.map((t) => t.name), ["hello"]);
      const r = await s.client.callTool({ name: "hello", arguments: { who: "sdk" } });
      assert.deepEqual(r, { content: [{ type: "text", text: "hello sdk" }] });
    } finally {
      await s.close();
    }
  });
});

describe("downstream failures", () => {
  it("crash mid-call: every pending request gets an error response, clampd exits non-zero", async () => {
    const peer = clampdPeer([NODE, path.join(FIXTURES, "crash.mjs")]);
    await peer.initialize();
    await peer.request("tools/list", {});
    assert.deepEqual((await peer.request("tools/call", { name: "ok", arguments: {} })).result.content, [{ type: "text", text: "ok" }]);
    await peer.send({ jsonrpc: "2.0", id: 50, method: "tools/call", params: { name: "slow", arguments: {} } });
    await sleep(300);
    await peer.send({ jsonrpc: "2.0", id: 51, method: "tools/call", params: { name: "crash", arguments: {} } });
    const r50 = await peer.response(50, { timeout: 10000 });
    const r51 = await peer.response(51, { timeout: 10000 });
    for (const r of [r50.msg, r51.msg]) {
      assert.equal(r.jsonrpc, "2.0");
      assert.ok(r.error && Number.isInteger(r.error.code), `an error response: ${JSON.stringify(r)}`);
      assert.equal(typeof r.error.message, "string");
    }
    const ex = await peer.waitExit(10000);
    assert.ok(ex, "clampd exited after the downstream died");
    assert.equal(ex.signal, null, "clampd exited by itself");
    assert.notEqual(ex.code, 0, "non-zero exit status");
    assert.match(peer.stderr(), /crash-fixture: fatal error, exiting now/, "the downstream's last words reach clampd's stderr");
  });

  it("the SDK client's pending call rejects when the downstream crashes", async () => {
    const s = await connect({ clampd: [NODE, path.join(FIXTURES, "crash.mjs")], stateDir: tmpDir() });
    try {
      await s.client.listTools();
      await assert.rejects(s.client.callTool({ name: "crash", arguments: {} }));
    } finally {
      await s.close();
    }
  });

  it("a downstream command that does not exist: initialize gets an error, stderr says why", async () => {
    const missing = "/nonexistent/clampd-e2e-no-such-server";
    const peer = clampdPeer([missing, "--flag"]);
    await peer.send({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "e2e", version: "1" } } });
    const r = await peer.response(1, { timeout: 10000 });
    assert.ok(r.msg.error, `initialize answered with an error: ${JSON.stringify(r.msg)}`);
    assert.ok(Number.isInteger(r.msg.error.code));
    assert.ok(peer.stderr().includes(missing), `stderr names the command: ${peer.stderr()}`);
    assert.match(peer.stderr(), /no such file|not found|cannot|could not|failed/i);
    peer.closeStdin();
    const ex = await peer.waitExit(10000);
    assert.ok(ex, "clampd exits");
    assert.notEqual(ex.code, 0);
  });

  it("the SDK client's connect fails (does not hang) when the downstream cannot start", async () => {
    requireClampd();
    const t0 = Date.now();
    await assert.rejects(connect({ clampd: ["/nonexistent/clampd-e2e-no-such-server"], stateDir: tmpDir() }), (e) => {
      assert.ok(e.stderr().includes("/nonexistent/clampd-e2e-no-such-server"), `stderr names the command: ${e.stderr()}`);
      return true;
    });
    assert.ok(Date.now() - t0 < 15000);
  });

  it("a downstream that exits before answering initialize: initialize gets an error", async () => {
    const peer = clampdPeer([NODE, "-e", "process.stderr.write('early-exit-fixture: bye\\n'); setTimeout(() => process.exit(3), 200)"]);
    await peer.send({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "e2e", version: "1" } } });
    const r = await peer.response(1, { timeout: 10000 });
    assert.ok(r.msg.error, JSON.stringify(r.msg));
    const ex = await peer.waitExit(10000);
    assert.ok(ex, "clampd exits");
    assert.notEqual(ex.code, 0);
    assert.match(peer.stderr(), /early-exit-fixture: bye/);
  });
});

describe("process lifecycle", () => {
  const ownPgid = pgidOf(process.pid);

  async function familySession() {
    const pidFile = path.join(tmpDir(), "pids.json");
    const peer = clampdPeer([NODE, path.join(FIXTURES, "family.mjs"), pidFile]);
    await peer.initialize();
    const pids = JSON.parse(await waitForFile(pidFile));
    assert.ok(alive(pids.pid) && alive(pids.childPid), "downstream and its child run");
    assert.notEqual(pids.pgid, ownPgid, "the downstream runs in a process group of its own");
    assert.equal(pgidOf(pids.childPid), pids.pgid);
    assert.ok(!liveMembersOfGroup(pids.pgid).includes(peer.pid), "clampd is not in the downstream's group");
    return { peer, pids };
  }

  async function assertGroupGone(pids) {
    const gone = await waitFor(() => liveMembersOfGroup(pids.pgid).length === 0, { timeout: 3000 });
    const left = liveMembersOfGroup(pids.pgid);
    for (const p of left) killQuietly(p);
    assert.ok(gone, `no process left in the downstream's group (left: ${left.join(",")})`);
    assert.ok(!alive(pids.pid) && !alive(pids.childPid));
  }

  it("client closes stdin: clampd ends the downstream's process group and exits 0", async () => {
    const { peer, pids } = await familySession();
    peer.closeStdin();
    const ex = await peer.waitExit(10000);
    assert.ok(ex, "clampd exited after stdin closed");
    assert.deepEqual(ex, { code: 0, signal: null });
    await assertGroupGone(pids);
  });

  for (const sig of ["SIGTERM", "SIGINT"]) {
    it(`${sig} to clampd: the downstream's process group is ended and clampd exits cleanly`, async () => {
      const { peer, pids } = await familySession();
      process.kill(peer.pid, sig);
      const ex = await peer.waitExit(10000);
      assert.ok(ex, `clampd exited after ${sig}`);
      assert.equal(ex.signal, null, "clampd handled the signal and exited by itself");
      // 0 per the e2e brief ("does the same" as stdin close), 4 per `clampd mcp --help`
      assert.ok([0, 4].includes(ex.code), `exit status ${ex.code}`);
      await assertGroupGone(pids);
    });
  }
});

describe("byte-faithful relay", () => {
  it("a tools/call result clampd does not change is relayed byte for byte", async () => {
    const { peer, receivedLines } = await rawSession();
    // an odd but valid request: it must reach the downstream as sent
    const req = '{ "params" : {"arguments":{},"name":"fixed"},"method":"tools/call", "id":7,"jsonrpc":"2.0"}';
    await peer.send(req);
    const r = await peer.response(7);
    assert.equal(r.raw.toString("utf8"), FIXED_RESULT.replace("ID", "7"));
    assert.ok(r.raw.equals(Buffer.from(FIXED_RESULT.replace("ID", "7"), "utf8")), "same bytes");
    assert.ok(
      receivedLines().some((l) => l.equals(Buffer.from(req))),
      `the downstream got the tools/call as sent; got:\n${receivedLines().map(String).join("\n")}`,
    );
  });

  it("a server notification is relayed byte for byte", async () => {
    const { peer } = await rawSession();
    await peer.send({ jsonrpc: "2.0", id: 8, method: "tools/call", params: { name: "notify-odd", arguments: {} } });
    await peer.response(8);
    const n = await peer.waitFor((m) => m.method === "notifications/message", { what: "the odd notification" });
    assert.equal(n.raw.toString("utf8"), ODD_NOTIFICATION);
  });

  it("a server -> client request and the client's response are relayed byte for byte", async () => {
    const { peer } = await rawSession();
    await peer.send({ jsonrpc: "2.0", id: 9, method: "tools/call", params: { name: "ask", arguments: {} } });
    const q = await peer.waitFor((m) => m.method === "sampling/createMessage", { what: "the server's request" });
    assert.equal(q.raw.toString("utf8"), ODD_REQUEST);
    const answer =
      '{"result" : {"model":"m","role":"assistant","content":{"type":"text","text":"\\u00e9t\\u00e9 \u2713"},"stopReason":"endTurn"} , "id":"srv-1",  "jsonrpc":"2.0"}';
    await peer.send(answer);
    const r = await peer.response(9);
    // the fixture answers the call with the exact line it received
    assert.equal(r.msg.result.content[0].text, answer);
  });

  it("client notifications and pings reach the downstream byte for byte", async () => {
    const { peer, receivedLines } = await rawSession();
    const notif = '{"method" : "notifications/roots/list_changed",  "jsonrpc":"2.0"}';
    await peer.send(notif);
    await peer.send('{ "id" : 12, "method":"ping","jsonrpc":"2.0" }');
    await peer.response(12);
    const got = receivedLines().map((l) => l.toString("utf8"));
    assert.ok(got.includes(notif), `notification forwarded as sent; got:\n${got.join("\n")}`);
    assert.ok(got.includes('{ "id" : 12, "method":"ping","jsonrpc":"2.0" }'), `ping forwarded as sent; got:\n${got.join("\n")}`);
  });
});

describe("big messages", () => {
  it("a 20 MB tools/call and its 20 MB result are relayed intact", async () => {
    const { peer, receivedLines } = await rawSession();
    const unit = "The quick brown fox jumps over the lazy dog — été ✓ 日本語. ";
    const text = unit.repeat(Math.ceil((20 * 1024 * 1024) / Buffer.byteLength(unit))).slice(0, 20 * 1024 * 1024);
    const req = JSON.stringify({ jsonrpc: "2.0", id: 20, method: "tools/call", params: { name: "echo", arguments: { text } } });
    assert.ok(Buffer.byteLength(req) > 20 * 1024 * 1024);
    const t0 = Date.now();
    await peer.send(req);
    const r = await peer.response(20, { timeout: 60000 });
    const ms = Date.now() - t0;
    assert.ok(r.msg.result, `a result, not ${JSON.stringify(r.msg).slice(0, 300)}`);
    const back = r.msg.result.content[0].text;
    assert.equal(back.length, text.length);
    assert.equal(createHash("sha256").update(back).digest("hex"), createHash("sha256").update(text).digest("hex"));
    const big = receivedLines().find((l) => l.length > 1024 * 1024);
    assert.ok(big, "the downstream received the big line");
    assert.ok(big.equals(Buffer.from(req)), "the downstream received the request byte for byte");
    assert.ok(ms < 30000, `relayed in ${ms} ms`);
  });
});

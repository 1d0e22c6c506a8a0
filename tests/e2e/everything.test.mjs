// server-everything, the MCP reference server, run once directly and once through clampd with the
// same session script: apart from clampd's `_meta` annotation of tools, everything the client
// sees must be the same.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  LoggingMessageNotificationSchema,
  ToolListChangedNotificationSchema,
} from "@modelcontextprotocol/sdk/types.js";
import { connect, tmpDir, NODE, EVERYTHING, FIXTURES, assertToolsEqualModuloMeta, withoutClampdMeta, sleep, waitFor, HEX64 } from "./lib.mjs";
import path from "node:path";

const EVERYTHING_ARGV = [NODE, EVERYTHING, "stdio"];
const ROOTS = [{ uri: "file:///tmp/clampd-e2e-root", name: "e2e root" }];

/** One client session with handlers that record what the server asked of the client. */
async function session(target) {
  const seen = { sampling: [], roots: 0, elicit: [], logs: [], toolsChanged: 0 };
  const s = await connect(target, {
    capabilities: { sampling: {}, roots: { listChanged: true }, elicitation: {} },
    handlers: [
      [
        CreateMessageRequestSchema,
        async (req) => {
          seen.sampling.push(req.params);
          return { role: "assistant", content: { type: "text", text: "sampled answer" }, model: "e2e-model", stopReason: "endTurn" };
        },
      ],
      [
        ListRootsRequestSchema,
        async () => {
          seen.roots++;
          return { roots: ROOTS };
        },
      ],
      [
        ElicitRequestSchema,
        async (req) => {
          seen.elicit.push(req.params.message);
          return { action: "decline" };
        },
      ],
    ],
    notifications: [
      [LoggingMessageNotificationSchema, (n) => seen.logs.push(n.params)],
      [ToolListChangedNotificationSchema, () => seen.toolsChanged++],
    ],
  });
  s.seen = seen;
  return s;
}

describe("server-everything: direct vs through clampd", () => {
  let direct;
  let viaClampd;

  before(async () => {
    viaClampd = await session({ clampd: EVERYTHING_ARGV, stateDir: tmpDir() });
    direct = await session({ direct: EVERYTHING_ARGV });
    // The server registers client-capability-dependent tools after `initialized` and asks for
    // roots 350 ms later; let both sessions settle.
    const settled = (s) => s.seen.logs.some((l) => String(l.data).startsWith("Roots updated"));
    await waitFor(() => settled(direct) && settled(viaClampd), { timeout: 5000 });
  });

  after(async () => {
    await direct?.close();
    await viaClampd?.close();
  });

  it("initialize: same server info, capabilities and instructions", () => {
    assert.deepEqual(viaClampd.client.getServerVersion(), direct.client.getServerVersion());
    assert.equal(direct.client.getServerVersion().name, "mcp-servers/everything");
    assert.deepEqual(viaClampd.client.getServerCapabilities(), direct.client.getServerCapabilities());
    assert.equal(viaClampd.client.getInstructions(), direct.client.getInstructions());
    assert.ok(direct.client.getInstructions().length > 0);
  });

  it("downstream stderr reaches clampd's stderr", () => {
    assert.match(viaClampd.stderr(), /Starting default \(STDIO\) server/);
  });

  it("server -> client roots/list and the log it triggers are relayed", () => {
    assert.equal(direct.seen.roots, 1);
    assert.equal(viaClampd.seen.roots, 1, "roots/list reached the client through clampd");
    const rootsLog = (s) => s.seen.logs.find((l) => String(l.data).startsWith("Roots updated"));
    assert.deepEqual(rootsLog(viaClampd), rootsLog(direct));
    assert.deepEqual(rootsLog(direct), { level: "info", logger: "everything-server", data: "Roots updated: 1 root(s) received from client" });
  });

  it("notifications/tools/list_changed sent after initialize is forwarded", () => {
    assert.ok(direct.seen.toolsChanged >= 1);
    assert.equal(viaClampd.seen.toolsChanged, direct.seen.toolsChanged);
  });

  it("tools/list equal modulo clampd/contract_hash; every tool hashed", async () => {
    const d = await direct.client.listTools();
    const c = await viaClampd.client.listTools();
    assert.ok(d.tools.length >= 12, `server-everything lists its tools (${d.tools.length})`);
    for (const name of ["echo", "get-sum", "trigger-sampling-request", "trigger-long-running-operation", "get-structured-content"]) {
      assert.ok(d.tools.some((t) => t.name === name), `direct lists ${name}`);
    }
    assertToolsEqualModuloMeta(c, d);
    // raw bytes as received (before SDK parsing) compare the same way
    const rawList = (s) => s.messages.filter((m) => m.result?.tools).at(-1).result;
    assertToolsEqualModuloMeta(rawList(viaClampd), rawList(direct));
  });

  const calls = [
    ["echo", { message: "hello, clampd — ünïcödé ✓" }],
    ["get-sum", { a: 40, b: 2.5 }],
    ["get-structured-content", { location: "Chicago" }],
    ["get-tiny-image", {}],
    ["get-annotated-message", { messageType: "error", includeImage: true }],
    ["get-annotated-message", { messageType: "success" }],
    ["get-roots-list", {}],
  ];
  for (const [name, args] of calls) {
    it(`tools/call ${name} ${JSON.stringify(args)} gives the same result`, async () => {
      const d = await direct.client.callTool({ name, arguments: args });
      const c = await viaClampd.client.callTool({ name, arguments: args });
      assert.notEqual(d.isError, true, `direct call succeeded: ${JSON.stringify(d).slice(0, 300)}`);
      assert.deepEqual(c, d);
    });
  }

  it("50 concurrent calls through clampd each get their own answer", async () => {
    const jobs = [];
    for (let i = 0; i < 40; i++) jobs.push([`echo-${i}-${"é".repeat(i)}`, viaClampd.client.callTool({ name: "echo", arguments: { message: `m${i}-${"é".repeat(i)}` } })]);
    for (let i = 0; i < 10; i++) jobs.push([`sum-${i}`, viaClampd.client.callTool({ name: "get-sum", arguments: { a: i, b: 1000 } })]);
    const results = await Promise.all(jobs.map(([, p]) => p));
    for (let i = 0; i < 40; i++) assert.equal(results[i].content[0].text, `Echo: m${i}-${"é".repeat(i)}`);
    for (let i = 0; i < 10; i++) assert.equal(results[40 + i].content[0].text, `The sum of ${i} and 1000 is ${i + 1000}.`);
  });

  it("structuredContent survives the relay", async () => {
    const c = await viaClampd.client.callTool({ name: "get-structured-content", arguments: { location: "Los Angeles" } });
    assert.deepEqual(c.structuredContent, { temperature: 73, conditions: "Sunny / Clear", humidity: 48 });
  });

  it("tools/call with invalid arguments: same error result", async () => {
    const d = await direct.client.callTool({ name: "get-sum", arguments: { a: "x" } });
    const c = await viaClampd.client.callTool({ name: "get-sum", arguments: { a: "x" } });
    assert.equal(d.isError, true);
    assert.deepEqual(c, d);
  });

  it("sampling: server -> client sampling/createMessage is relayed and answered", async () => {
    const args = { prompt: "What is clampd?", maxTokens: 17 };
    const d = await direct.client.callTool({ name: "trigger-sampling-request", arguments: args });
    const c = await viaClampd.client.callTool({ name: "trigger-sampling-request", arguments: args });
    assert.equal(viaClampd.seen.sampling.length, 1, "the clampd session's client got one sampling request");
    assert.deepEqual(viaClampd.seen.sampling, direct.seen.sampling);
    assert.equal(viaClampd.seen.sampling[0].maxTokens, 17);
    assert.deepEqual(c, d);
    assert.match(c.content[0].text, /sampled answer/);
  });

  it("elicitation: server -> client elicitation/create is relayed", async () => {
    const d = await direct.client.callTool({ name: "trigger-elicitation-request", arguments: {} });
    const c = await viaClampd.client.callTool({ name: "trigger-elicitation-request", arguments: {} });
    assert.equal(viaClampd.seen.elicit.length, 1);
    assert.deepEqual(viaClampd.seen.elicit, direct.seen.elicit);
    assert.deepEqual(c, d);
  });

  it("progress notifications of a long-running tool reach the client", async () => {
    const args = { duration: 0.6, steps: 3 };
    const run = async (s) => {
      const progress = [];
      const before = s.messages.length;
      const r = await s.client.callTool({ name: "trigger-long-running-operation", arguments: args }, undefined, {
        onprogress: (p) => progress.push(p),
      });
      await sleep(100);
      const wire = s.messages.slice(before).filter((m) => m.method === "notifications/progress").map((m) => m.params);
      return { r, progress, wire };
    };
    const d = await run(direct);
    const c = await run(viaClampd);
    assert.deepEqual(c.r, d.r);
    // On the wire: exactly one notification per step, in order.
    assert.deepEqual(
      c.wire.map((p) => [p.progress, p.total]),
      [
        [1, 3],
        [2, 3],
        [3, 3],
      ],
    );
    assert.equal(new Set(c.wire.map((p) => JSON.stringify(p.progressToken))).size, 1, "one progress token for the call");
    assert.equal(d.wire.length, 3);
    // The SDK drops a progress notification that is processed after the final result, so the
    // callback sees at least the first steps.
    assert.ok(c.progress.length >= 2, `onprogress called through clampd (${JSON.stringify(c.progress)})`);
    assert.deepEqual(c.progress.map((p) => p.progress), [1, 2, 3].slice(0, c.progress.length));
  });

  it("cancellation: aborting a long call rejects it and the server gets notifications/cancelled", async () => {
    const run = async (s) => {
      const ac = new AbortController();
      const before = s.messages.length;
      const errorsBefore = s.errors.length;
      const p = s.client.callTool({ name: "trigger-long-running-operation", arguments: { duration: 1.2, steps: 2 } }, undefined, {
        signal: ac.signal,
      });
      setTimeout(() => ac.abort("stop it"), 200);
      await assert.rejects(p, /stop it/);
      // Had the server not been told, it would answer after 1.2 s: a response to an id the client
      // forgot, reported through onerror.
      await sleep(1600);
      const late = s.messages.slice(before).filter((m) => "result" in m || "error" in m);
      return { late, errors: s.errors.slice(errorsBefore) };
    };
    const d = await run(direct);
    assert.deepEqual(d.late, [], "direct: a cancelled request gets no response");
    const c = await run(viaClampd);
    assert.deepEqual(c.late, [], "through clampd: the cancelled request got no late response (the cancellation was relayed)");
    assert.deepEqual(c.errors.map(String), []);
  });

  it("resources/list, templates and read are the same", async () => {
    const d = await direct.client.listResources();
    const c = await viaClampd.client.listResources();
    assert.ok(d.resources.length > 0);
    assert.deepEqual(c, d);
    const dt = await direct.client.listResourceTemplates();
    const ct = await viaClampd.client.listResourceTemplates();
    assert.ok(dt.resourceTemplates.length >= 2);
    assert.deepEqual(withoutClampdMeta(ct, "resourceTemplates"), dt);
    for (const r of d.resources.slice(0, 3)) {
      const dr = await direct.client.readResource({ uri: r.uri });
      const cr = await viaClampd.client.readResource({ uri: r.uri });
      assert.ok(dr.contents[0].text.length > 0);
      assert.deepEqual(cr, dr);
    }
    // dynamic resources carry a timestamp: compare without it
    const noTime = (x) => JSON.parse(JSON.stringify(x).replace(/created at [^"]*"/g, 'created at T"'));
    for (const uri of ["demo://resource/dynamic/text/7", "demo://resource/dynamic/blob/3"]) {
      const dr = await direct.client.readResource({ uri });
      const cr = await viaClampd.client.readResource({ uri });
      if (dr.contents[0].blob) {
        dr.contents[0].blob = Buffer.from(dr.contents[0].blob, "base64").toString();
        cr.contents[0].blob = Buffer.from(cr.contents[0].blob, "base64").toString();
      }
      assert.deepEqual(noTime(cr), noTime(dr));
    }
  });

  // The contract for this suite: only tools carry clampd's `_meta` annotation; every other
  // result is relayed unchanged. (The comparisons above strip clampd/* keys so that they test
  // the rest of the relay; this test checks the annotation itself is absent.)
  it("prompts/list and resources/templates/list items are pinned: each carries its hash, the rest is unchanged", async () => {
    for (const [list, key] of [
      [(s) => s.client.listPrompts(), "prompts"],
      [(s) => s.client.listResourceTemplates(), "resourceTemplates"],
    ]) {
      const d = await list(direct);
      const c = await list(viaClampd);
      assert.ok(c[key].length > 0 && c[key].length === d[key].length, key);
      for (const item of c[key]) assert.match(item._meta["clampd/contract_hash"], HEX64, `${key}: ${item.name}`);
      assert.deepEqual(withoutClampdMeta(c, key), d);
    }
  });

  it("reading an unknown resource: same JSON-RPC error", async () => {
    const err = async (s) => {
      try {
        await s.client.readResource({ uri: "demo://resource/dynamic/text/notanumber" });
      } catch (e) {
        return { code: e.code, message: e.message };
      }
      return null;
    };
    const d = await err(direct);
    assert.ok(d, "direct read fails");
    assert.deepEqual(await err(viaClampd), d);
  });

  it("prompts/list, prompts/get and completion/complete are the same", async () => {
    const d = await direct.client.listPrompts();
    assert.ok(d.prompts.some((p) => p.name === "args-prompt"));
    assert.deepEqual(withoutClampdMeta(await viaClampd.client.listPrompts(), "prompts"), d);
    for (const [name, args] of [
      ["simple-prompt", undefined],
      ["args-prompt", { city: "Zürich", state: "ZH" }],
      ["completable-prompt", { department: "Sales", name: "Eve" }],
      ["resource-prompt", { resourceType: "Text", resourceId: "1" }],
    ]) {
      const dp = await direct.client.getPrompt({ name, arguments: args });
      const cp = await viaClampd.client.getPrompt({ name, arguments: args });
      const noTime = (x) => JSON.parse(JSON.stringify(x).replace(/created at [^"]*"/g, 'created at T"'));
      assert.deepEqual(noTime(cp), noTime(dp), `prompt ${name}`);
    }
    const req = { ref: { type: "ref/prompt", name: "completable-prompt" }, argument: { name: "name", value: "" }, context: { arguments: { department: "Engineering" } } };
    const dc = await direct.client.complete(req);
    assert.deepEqual(dc.completion.values, ["Alice", "Bob", "Charlie"]);
    assert.deepEqual(await viaClampd.client.complete(req), dc);
    const rreq = { ref: { type: "ref/resource", uri: "demo://resource/dynamic/text/{resourceId}" }, argument: { name: "resourceId", value: "12" } };
    assert.deepEqual(await viaClampd.client.complete(rreq), await direct.client.complete(rreq));
  });

  it("logging/setLevel and notifications/message", async () => {
    const run = async (s) => {
      assert.deepEqual(await s.client.setLoggingLevel("debug"), {});
      const n0 = s.seen.logs.length;
      const r1 = await s.client.callTool({ name: "toggle-simulated-logging", arguments: {} });
      const got = await waitFor(() => s.seen.logs.length > n0, { timeout: 3000 });
      const r2 = await s.client.callTool({ name: "toggle-simulated-logging", arguments: {} });
      return { got, log: s.seen.logs[n0], r1, r2 };
    };
    const d = await run(direct);
    const c = await run(viaClampd);
    assert.ok(d.got && c.got, "a simulated log message arrived in both sessions");
    assert.deepEqual(c.r1, d.r1);
    assert.deepEqual(c.r2, d.r2);
    const levels = ["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"];
    assert.ok(levels.includes(c.log.level));
    assert.match(String(c.log.data), /message/i);
  });

  it("client -> server ping", async () => {
    assert.deepEqual(await viaClampd.client.ping(), await direct.client.ping());
  });

  it("no protocol errors were reported by the SDK through clampd", () => {
    // (the SDK's own race: a final progress notification handled after the result)
    const real = viaClampd.errors.map(String).filter((e) => !/progress notification for an unknown token/.test(e));
    assert.deepEqual(real, []);
  });
});

describe("control messages (probe fixture) through clampd", () => {
  const PROBE = [NODE, path.join(FIXTURES, "probe.mjs")];
  let s;
  before(async () => {
    s = await connect({ clampd: PROBE, stateDir: tmpDir() });
    await s.client.listTools();
  });
  after(async () => s?.close());

  it("notifications/cancelled reaches the server with its reason", async () => {
    const ac = new AbortController();
    const p = s.client.callTool({ name: "slow", arguments: {} }, undefined, { signal: ac.signal });
    setTimeout(() => ac.abort("user pressed stop"), 300);
    await assert.rejects(p, /user pressed stop/);
    const r = await s.client.callTool({ name: "cancellations", arguments: {} });
    assert.deepEqual(JSON.parse(r.content[0].text), ["user pressed stop"]);
  });

  it("server -> client ping is relayed and answered", async () => {
    const r = await s.client.callTool({ name: "ping-client", arguments: {} });
    assert.notEqual(r.isError, true, JSON.stringify(r));
    assert.deepEqual(JSON.parse(r.content[0].text), {});
    assert.ok(s.messages.some((m) => m.method === "ping" && m.id !== undefined), "the client saw the server's ping request");
  });

  it("client -> server ping", async () => {
    assert.deepEqual(await s.client.ping(), {});
  });
});

describe("--env passes variables to the downstream", () => {
  it("get-env shows the variable through clampd only", async () => {
    let d;
    let c;
    try {
      d = await connect({ direct: EVERYTHING_ARGV });
      c = await connect({ clampd: EVERYTHING_ARGV, stateDir: tmpDir(), env: { CLAMPD_E2E_MARKER: "marker=value with spaces" } });
      await d.client.listTools();
      await c.client.listTools();
      const envOf = async (s) => JSON.parse((await s.client.callTool({ name: "get-env", arguments: {} })).content[0].text);
      assert.equal((await envOf(d)).CLAMPD_E2E_MARKER, undefined);
      assert.equal((await envOf(c)).CLAMPD_E2E_MARKER, "marker=value with spaces");
    } finally {
      await d?.close();
      await c?.close();
    }
  });

  it("clampd's own CLAMPD_* variables (its secrets) do not reach the downstream; others do", async () => {
    let c;
    try {
      c = await connect({ clampd: EVERYTHING_ARGV, stateDir: tmpDir() }, { env: { CLAMPD_API_KEY: "sk-test-not-for-downstream", E2E_INHERITED: "yes" } });
      await c.client.listTools();
      const r = await c.client.callTool({ name: "get-env", arguments: {} });
      const env = JSON.parse(r.content[0].text);
      assert.equal(env.E2E_INHERITED, "yes");
      assert.equal(env.CLAMPD_API_KEY, undefined);
      assert.ok(!r.content[0].text.includes("sk-test-not-for-downstream"));
    } finally {
      await c?.close();
    }
  });
});

// The proxy's remote mode: `clampd mcp --gateway URL` decides every tools/call at a
// `clampd gateway` (docs/gateway.md). Two proxies of different agents against one gateway,
// the real filesystem server downstream, the SDK client upstream: allowed, denied by scope,
// denied by rules, rate-limited, unclassified then classified, the gateway killed mid-session
// (fail closed; --fail-open decides locally), and the gateway's scope token as the downstream
// receives it, verified with `jose` against the gateway's JWKS.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import * as jose from "jose";
import { FIXTURES, NODE, FILESYSTEM, assertDenial, canonicalJson, connect, startGateway, stopGateway, tmpDir } from "./lib.mjs";

const sha256 = (s) => createHash("sha256").update(s, "utf8").digest("hex");
const KEYS = { reader: "rk-6d0c2a9e41", writer: "wk-92f1b7c3d5", hasty: "hk-1e8a5f0b77", echo: "ek-4b7d29c0a3" };

const POLICY = (extra = "") => `
agents:
  - id: reader
    api_key_sha256: ${sha256(KEYS.reader)}
    scopes: [fs:read]
  - id: writer
    api_key_sha256: ${sha256(KEYS.writer)}
    scopes: ["fs:*"]
  - id: hasty
    api_key_sha256: ${sha256(KEYS.hasty)}
    scopes: [fs:read]
    rate: {calls_per_minute: 2, burst: 2}
  - id: echo
    api_key_sha256: ${sha256(KEYS.echo)}
    scopes: [debug]
categories:
  - {name: filesystem-read, scopes: [fs:read]}
  - {name: filesystem-write, scopes: [fs:write]}
  - {name: debugging, scopes: [debug]}
tools:
  - server: secure-filesystem-server
    tools: [read_text_file, "list_directory*"]
    category: filesystem-read
  - server: "*"
    tools: [write_file]
    category: filesystem-write
  - server: metaecho-fixture
    tools: [echo_meta]
    category: debugging
${extra}`;




describe("clampd mcp --gateway: decisions at the gateway (server-filesystem, SDK client)", () => {
  let dir, root, policy, gw, gwState;
  const sessions = [];

  /** A proxy for agent (its key in a file, or in $CLAMPD_API_KEY), tools listed. */
  const open = async (agent, { downstream = [NODE, FILESYSTEM, root], keyVia = "file", extra = [] } = {}) => {
    const keyFile = path.join(dir, `${agent}.key`);
    fs.writeFileSync(keyFile, KEYS[agent] + "\n", { mode: 0o600 });
    const s = await connect(
      {
        clampd: downstream,
        stateDir: path.join(dir, `state-${agent}`),
        agentId: agent,
        extra: ["--gateway", gw.url, ...(keyVia === "file" ? ["--api-key-file", keyFile] : []), ...extra],
      },
      { env: keyVia === "env" ? { CLAMPD_API_KEY: KEYS[agent] } : {} },
    );
    sessions.push(s);
    await s.client.listTools();
    return s;
  };

  before(async () => {
    dir = tmpDir();
    root = path.join(dir, "files");
    fs.mkdirSync(root);
    fs.writeFileSync(path.join(root, "notes.txt"), "meeting at 10\n");
    policy = path.join(dir, "policy.yaml");
    fs.writeFileSync(policy, POLICY());
    gwState = path.join(dir, "gateway-state");
    gw = await startGateway(["--policy", policy, "--state-dir", gwState]);
  });
  after(async () => {
    for (const s of sessions) await s.close();
    await stopGateway(gw, "SIGKILL");
  });

  it("allows a call in the agent's scopes: the downstream answers", async () => {
    const s = await open("reader");
    const r = await s.client.callTool({ name: "read_text_file", arguments: { path: path.join(root, "notes.txt") } });
    assert.notEqual(r.isError, true, JSON.stringify(r) + s.stderr());
    assert.match(r.content[0].text, /meeting at 10/);
  });

  it("two agents, two scopes: the reader is denied a write the writer may make", async () => {
    const reader = await open("reader", { keyVia: "env" });
    const writer = await open("writer");
    const file = path.join(root, "out.txt");
    const denied = await reader.client.callTool({ name: "write_file", arguments: { path: file, content: "x" } });
    const { text } = assertDenial(denied, "write_file", "scope_denied");
    assert.match(text, /fs:write/);
    assert.equal(fs.existsSync(file), false, "the denied write never reached the server");
    const ok = await writer.client.callTool({ name: "write_file", arguments: { path: file, content: "hello" } });
    assert.notEqual(ok.isError, true, JSON.stringify(ok));
    assert.equal(fs.readFileSync(file, "utf8"), "hello");
  });

  it("denies by the gateway's rules, naming them", async () => {
    const s = await open("reader");
    const r = await s.client.callTool({ name: "read_text_file", arguments: { path: root + "/../../../../etc/shadow" } });
    const { denial } = assertDenial(r, "read_text_file", "rule_match");
    assert.ok(denial.rule_ids.length >= 1, JSON.stringify(denial));
  });

  it("rate limits at the gateway: the third call in a burst of two is rate_limited", async () => {
    const s = await open("hasty");
    const args = { path: path.join(root, "notes.txt") };
    for (let i = 0; i < 2; i++) {
      const r = await s.client.callTool({ name: "read_text_file", arguments: args });
      assert.notEqual(r.isError, true, JSON.stringify(r));
    }
    const r = await s.client.callTool({ name: "read_text_file", arguments: args });
    const { text } = assertDenial(r, "read_text_file", "rate_limited");
    assert.match(text, /retry in \d+ ms/);
  });

  it("a wrong API key is refused by the gateway, and the call with it", async () => {
    const keyFile = path.join(dir, "wrong.key");
    fs.writeFileSync(keyFile, "not-a-key\n");
    const s = await connect({
      clampd: [NODE, FILESYSTEM, root],
      stateDir: path.join(dir, "state-wrong"),
      extra: ["--gateway", gw.url, "--api-key-file", keyFile],
    });
    sessions.push(s);
    await s.client.listTools();
    const r = await s.client.callTool({ name: "read_text_file", arguments: { path: path.join(root, "notes.txt") } });
    const { text } = assertDenial(r, "read_text_file", "unauthorized");
    assert.match(text, /HTTP 401/);
    assert.doesNotMatch(s.stderr(), /not-a-key/, "the key is never logged");
  });

  it("forwards the gateway's scope token; jose verifies it against the gateway's JWKS, bound to the call", async () => {
    const s = await open("echo", { downstream: [NODE, path.join(FIXTURES, "metaecho.mjs")] });
    const args = { text: "hello", n: 3 };
    const r = await s.client.callTool({ name: "echo_meta", arguments: args, _meta: { "clampd/scope_token": "forged.by.client" } });
    assert.notEqual(r.isError, true, JSON.stringify(r));
    const seen = JSON.parse(Buffer.from(r.content[0].text, "hex").toString());
    assert.deepEqual(seen.arguments, args, "the arguments reach the server as sent");
    const token = seen._meta["clampd/scope_token"];
    assert.notEqual(token, "forged.by.client", "a client's own token never reaches the server");
    const jwks = jose.createRemoteJWKSet(new URL(gw.url + "/.well-known/jwks.json"));
    const { payload } = await jose.jwtVerify(token, jwks, { algorithms: ["EdDSA"] });
    assert.equal(payload.sub, "echo");
    assert.equal(payload.tool, "echo_meta");
    assert.equal(payload.scope, "debug");
    assert.equal(payload.binding, sha256(canonicalJson({ params: args, tool: "echo_meta" })));
  });

  it("an unclassified tool is denied; given a category (gateway restarted with the new policy) it is allowed; while the gateway is down calls fail closed", async () => {
    const s = await open("reader");
    const args = { path: root };
    let r = await s.client.callTool({ name: "directory_tree", arguments: args });
    assertDenial(r, "directory_tree", "tool_not_classified");

    // the gateway goes away mid-session: fail closed, with a reason
    const port = new URL(gw.url).port;
    await stopGateway(gw, "SIGKILL");
    r = await s.client.callTool({ name: "read_text_file", arguments: { path: path.join(root, "notes.txt") } });
    const { text } = assertDenial(r, "read_text_file", "gateway_unavailable");
    assert.match(text, /fail closed/);

    // the platform team gives the tool a category; the gateway comes back on its address
    fs.writeFileSync(policy, POLICY(`  - server: secure-filesystem-server\n    tools: [directory_tree]\n    category: filesystem-read\n`));
    gw = await startGateway(["--policy", policy, "--state-dir", gwState], { listen: `127.0.0.1:${port}` });
    r = await s.client.callTool({ name: "directory_tree", arguments: args });
    assert.notEqual(r.isError, true, JSON.stringify(r) + s.stderr());
    assert.match(r.content[0].text, /notes\.txt/);
  });

  it("--fail-open: with the gateway down, calls are decided by the local rules, loudly", async () => {
    const s = await open("reader", { extra: ["--fail-open"] });
    const port = new URL(gw.url).port;
    await stopGateway(gw, "SIGKILL");
    try {
      const ok = await s.client.callTool({ name: "read_text_file", arguments: { path: path.join(root, "notes.txt") } });
      assert.notEqual(ok.isError, true, JSON.stringify(ok));
      assert.match(ok.content[0].text, /meeting at 10/);
      const bad = await s.client.callTool({ name: "read_text_file", arguments: { path: root + "/../../../../etc/shadow" } });
      assertDenial(bad, "read_text_file", "rule_match");
      assert.match(s.stderr(), /FAIL-OPEN/);
    } finally {
      gw = await startGateway(["--policy", policy, "--state-dir", gwState], { listen: `127.0.0.1:${port}` });
    }
  });
});

describe("clampd mcp --gateway: usage", () => {
  it("refuses --policy with --gateway, and --gateway without a key", async () => {
    const { runClampd } = await import("./lib.mjs");
    let r = await runClampd(["mcp", "--downstream", "true", "--gateway", "http://127.0.0.1:9", "--policy", "/nonexistent"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--policy and --scope-tokens are for in-process mode/);
    r = await runClampd(["mcp", "--downstream", "true", "--gateway", "http://127.0.0.1:9"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /needs the agent's API key/);
    r = await runClampd(["mcp", "--downstream", "true", "--gateway", "ftp://x"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /http:\/\/ or https:\/\//);
  });
});

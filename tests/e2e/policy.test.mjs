// The policy stage through the proxy: categories and scopes, unclassified tools, rate
// limits, with the official SDK client and the real filesystem server.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { connect, runClampd, tmpDir, NODE, FILESYSTEM, assertDenial } from "./lib.mjs";

const POLICY = (extra = "") => `
agents:
  - id: reader
    scopes: [fs:read]
  - id: writer
    scopes: ["fs:*"]
  - id: hasty
    scopes: [fs:read]
    rate: {calls_per_minute: 6, burst: 2}
${extra}
categories:
  - {name: filesystem-read, scopes: [fs:read]}
  - {name: filesystem-write, scopes: [fs:write]}
tools:
  - server: secure-filesystem-server
    tools: [read_text_file, "list_directory*", get_file_info]
    category: filesystem-read
  - server: "*"
    tools: [write_file, edit_file]
    category: filesystem-write
`;

describe("policy: categories, scopes, unclassified tools, rate limits (server-filesystem)", () => {
  let dir, root, policy, stateDir;
  const sessions = [];
  const open = async (agentId, policyFile = policy) => {
    const s = await connect({ clampd: [NODE, FILESYSTEM, root], stateDir, agentId, extra: ["--policy", policyFile] });
    sessions.push(s);
    await s.client.listTools();
    return s;
  };
  before(() => {
    dir = tmpDir();
    root = path.join(dir, "files");
    fs.mkdirSync(root);
    fs.writeFileSync(path.join(root, "notes.txt"), "meeting at 10\n");
    policy = path.join(dir, "policy.yaml");
    fs.writeFileSync(policy, POLICY());
    stateDir = path.join(dir, "state");
  });
  after(async () => {
    for (const s of sessions) await s.close();
  });

  it("a tool in a category whose scopes the agent holds is allowed", async () => {
    const s = await open("reader");
    const r = await s.client.callTool({ name: "read_text_file", arguments: { path: path.join(root, "notes.txt") } });
    assert.notEqual(r.isError, true, JSON.stringify(r));
    assert.match(r.content[0].text, /meeting at 10/);
  });

  it("an agent without the category's scope is denied, naming the scope", async () => {
    const s = await open("reader");
    const r = await s.client.callTool({ name: "write_file", arguments: { path: path.join(root, "x.txt"), content: "x" } });
    assertDenial(r, "write_file", "scope_denied");
    assert.match(r.content[0].text, /agent 'reader' lacks scope 'fs:write', which category 'filesystem-write'/);
    assert.equal(fs.existsSync(path.join(root, "x.txt")), false);
    const w = await (await open("writer")).client.callTool({ name: "write_file", arguments: { path: path.join(root, "x.txt"), content: "x" } });
    assert.notEqual(w.isError, true, JSON.stringify(w));
  });

  it("a tool that maps to no category is denied until it is given one", async () => {
    let s = await open("writer");
    let r = await s.client.callTool({ name: "list_allowed_directories", arguments: {} });
    assertDenial(r, "list_allowed_directories", "tool_not_classified");
    const list = await runClampd(["tools", "list", "--policy", policy, "--state-dir", stateDir, "--json"]);
    assert.equal(list.code, 0, list.stderr);
    const pins = list.stdout.trim().split("\n").map((l) => JSON.parse(l)).filter((p) => p.kind === "tool");
    assert.equal(pins.find((p) => p.name === "list_allowed_directories").category, null);
    assert.equal(pins.find((p) => p.name === "read_text_file").category, "filesystem-read");
    // classify it: the same call now passes
    const updated = path.join(dir, "policy2.yaml");
    fs.writeFileSync(updated, POLICY().replace("get_file_info]", "get_file_info, list_allowed_directories]"));
    s = await open("writer", updated);
    r = await s.client.callTool({ name: "list_allowed_directories", arguments: {} });
    assert.notEqual(r.isError, true, JSON.stringify(r));
  });

  it("an agent that is not in the policy holds no scopes", async () => {
    const s = await open("stranger");
    const r = await s.client.callTool({ name: "read_text_file", arguments: { path: path.join(root, "notes.txt") } });
    assertDenial(r, "read_text_file", "scope_denied");
    assert.match(r.content[0].text, /agent 'stranger' is not in the policy/);
  });

  it("over its rate the agent is denied with the time to retry", async () => {
    const s = await open("hasty");
    const call = () => s.client.callTool({ name: "get_file_info", arguments: { path: root } });
    assert.notEqual((await call()).isError, true);
    assert.notEqual((await call()).isError, true);
    const r = await call();
    assertDenial(r, "get_file_info", "rate_limited");
    assert.match(r.content[0].text, /over its limit of calls per minute; retry in \d+ ms/);
  });

  it("a policy that does not load stops clampd with file:line", async () => {
    const bad = path.join(dir, "bad.yaml");
    fs.writeFileSync(bad, "agents:\n  - {id: a, scopes: [fs:read], colour: red}\n");
    const r = await runClampd(["mcp", "--policy", bad, "--state-dir", stateDir, "--downstream", `${NODE} ${FILESYSTEM} ${root}`]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /policy: .*bad\.yaml:2: unknown key 'colour' in an agent/);
  });
});

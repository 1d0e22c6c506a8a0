// `clampd gateway --redis`: two gateways share their agents' rate-limit buckets through one
// Debian redis-server on loopback. Calls alternated between the gateways are limited together
// (per agent and per agent+tool), other agents are not; Redis killed mid-run → calls are
// denied with 503 rate_limit_unavailable while /health still answers; Redis back on the same
// port → calls pass again; fail_mode: open passes them instead.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { CLAMPD, requireClampd, tmpDir, contractHash, sleep, startGateway, stopGateway, waitFor } from "./lib.mjs";

const sha256 = (s) => createHash("sha256").update(s, "utf8").digest("hex");
const KEYS = { hasty: "hk-1a2b3c4d5e", calm: "ck-6f7a8b9c0d", toolish: "tk-0e1f2a3b4c", steady: "sk-5d6e7f8a9b" };
const SERVER = "secure-filesystem-server";
const H_READ = contractHash({ name: "read_text_file", description: "Read a file" });
const H_LIST = contractHash({ name: "list_directory", description: "List a directory" });

const policy = (failMode) => `
agents:
  - id: hasty
    api_key_sha256: ${sha256(KEYS.hasty)}
    scopes: [fs:read]
    rate: {calls_per_minute: 3, burst: 3}
  - id: calm
    api_key_sha256: ${sha256(KEYS.calm)}
    scopes: [fs:read]
    rate: {calls_per_minute: 3, burst: 3}
  - id: toolish
    api_key_sha256: ${sha256(KEYS.toolish)}
    scopes: [fs:read]
    rate: {tool_calls_per_minute: 6}
  - id: steady
    api_key_sha256: ${sha256(KEYS.steady)}
    scopes: [fs:read]
    rate: {calls_per_minute: 6000, burst: 1000}
categories:
  - {name: filesystem-read, scopes: [fs:read]}
tools:
  - server: ${SERVER}
    tools: [read_text_file, "list_directory*"]
    category: filesystem-read
fail_mode: ${failMode}
`;

/** A loopback port nobody listens on right now. */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Sends one command (an array of strings) in RESP; resolves with the raw answer, or null. */
function redisCommand(port, argv) {
  const wire = `*${argv.length}\r\n` + argv.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join("");
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1", () => s.write(wire));
    let out = "";
    const t = setTimeout(() => (s.destroy(), resolve(out || null)), 1000);
    s.on("data", (d) => {
      out += d;
      if (out.endsWith("\r\n")) {
        clearTimeout(t);
        s.destroy();
        resolve(out);
      }
    });
    s.on("error", () => (clearTimeout(t), resolve(null)));
  });
}

async function startRedis(port, dir) {
  const p = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir], {
    stdio: ["ignore", "ignore", "ignore"],
  });
  for (let i = 0; i < 100; i++) {
    if ((await redisCommand(port, ["PING"])) === "+PONG\r\n") return p;
    await sleep(50);
  }
  p.kill("SIGKILL");
  throw new Error("redis-server did not answer PING");
}

const stopped = (p) => new Promise((res) => (p.exitCode !== null || p.signalCode ? res() : p.once("exit", res)));



async function proxy(gw, key, tool = "read_text_file", args = { path: "/srv/a" }) {
  const body = { tool, params: args, tool_descriptor_hash: tool === "read_text_file" ? H_READ : H_LIST, server: SERVER };
  const r = await fetch(gw.url + "/v1/proxy", { method: "POST", headers: { "content-type": "application/json", "x-ag-key": key }, body: JSON.stringify(body) });
  const text = await r.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: r.status, text, json };
}

describe("clampd gateway --redis: replicas share rate-limit buckets", () => {
  let dir, port, redis, a, b, open;

  before(async () => {
    execFileSync("redis-server", ["--version"]); // a missing redis-server fails the suite
    dir = tmpDir("clampd-redis-");
    port = await freePort();
    redis = await startRedis(port, dir);
    fs.writeFileSync(path.join(dir, "closed.yaml"), policy("closed"));
    fs.writeFileSync(path.join(dir, "open.yaml"), policy("open"));
    const url = `redis://127.0.0.1:${port}/2`;
    // two replicas, each with its own state dir, like two hosts
    [a, b] = await Promise.all([
      startGateway(["--policy", path.join(dir, "closed.yaml"), "--state-dir", path.join(dir, "a"), "--redis", url]),
      startGateway(["--policy", path.join(dir, "closed.yaml"), "--state-dir", path.join(dir, "b"), "--redis", url]),
    ]);
  });
  after(async () => {
    const codes = [await stopGateway(a), await stopGateway(b), await stopGateway(open)];
    if (redis) {
      redis.kill("SIGKILL");
      await stopped(redis);
    }
    for (const [i, g] of [a, b, open].entries()) {
      if (!g) continue;
      assert.equal(codes[i], 0, g.stderr().slice(-4000));
      assert.doesNotMatch(g.stderr(), /AddressSanitizer|runtime error|LeakSanitizer/);
    }
  });

  it("limits an agent across both replicas: the (burst+1)-th call is 429 on either", async () => {
    const seen = [];
    for (const gw of [a, b, a]) {
      const r = await proxy(gw, KEYS.hasty);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.allowed, true, r.text);
      seen.push(r.status);
    }
    for (const gw of [b, a]) {
      const r = await proxy(gw, KEYS.hasty);
      assert.equal(r.status, 429, r.text);
      assert.equal(r.json.error_code, "rate_limited");
      assert.match(r.json.reasoning, /calls per minute; retry in \d+ ms/);
      assert.ok(r.json.retry_after_ms > 0 && r.json.retry_after_ms <= 20000, r.text);
    }
    // another agent has buckets of its own
    for (const gw of [b, a, b]) assert.equal((await proxy(gw, KEYS.calm)).status, 200);
    assert.equal((await proxy(a, KEYS.calm)).status, 429);
  });

  it("keeps the buckets in Redis under hashed keys that expire", async () => {
    const keys = await redisCommand(port, ["EVAL", "redis.call('SELECT', 2) return redis.call('KEYS', 'clampd:rl:*')", "0"]);
    const names = [...keys.matchAll(/clampd:rl:[0-9a-f]{64}/g)].map((m) => m[0]);
    assert.ok(names.length >= 2, keys);
    assert.doesNotMatch(keys, /hasty|calm/, "agent ids are hashed");
    const ttl = await redisCommand(port, ["EVAL", "redis.call('SELECT', 2) return redis.call('PTTL', KEYS[1])", "1", names[0]]);
    const ms = Number(/^:(-?\d+)/.exec(ttl)[1]);
    assert.ok(ms > 0 && ms <= 61000, `PTTL ${ttl}`);
  });

  it("a /v1/verify dry run reads the shared buckets without taking from them", async () => {
    const dry = async (gw, key) => {
      const body = { tool: "read_text_file", params: { path: "/x" }, tool_descriptor_hash: H_READ, server: SERVER };
      const r = await fetch(gw.url + "/v1/verify", { method: "POST", headers: { "content-type": "application/json", "x-ag-key": key }, body: JSON.stringify(body) });
      return r.status;
    };
    assert.equal(await dry(b, KEYS.hasty), 429);
    for (let i = 0; i < 5; i++) assert.equal(await dry(a, KEYS.steady), 200);
  });

  it("limits an agent's calls per tool across replicas; other tools are unaffected", async () => {
    // tool_calls_per_minute 6: a bucket of 1 per tool
    assert.equal((await proxy(a, KEYS.toolish)).status, 200);
    const r = await proxy(b, KEYS.toolish);
    assert.equal(r.status, 429, r.text);
    assert.match(r.json.reasoning, /calls per minute to this tool/);
    assert.equal((await proxy(b, KEYS.toolish, "list_directory", { path: "/srv" })).status, 200);
    assert.equal((await proxy(a, KEYS.toolish, "list_directory", { path: "/srv" })).status, 429);
  });

  it("loads the script again after SCRIPT FLUSH (EVALSHA → NOSCRIPT → EVAL)", async () => {
    assert.equal(await redisCommand(port, ["SCRIPT", "FLUSH"]), "+OK\r\n");
    assert.equal((await proxy(a, KEYS.steady)).status, 200);
    assert.equal((await proxy(b, KEYS.steady)).status, 200);
  });

  it("fails closed while Redis is down (503 rate_limit_unavailable, /health answers), then recovers", async () => {
    assert.equal((await proxy(a, KEYS.steady)).status, 200);
    redis.kill("SIGKILL");
    await stopped(redis);
    for (const gw of [a, b]) {
      const r = await proxy(gw, KEYS.steady);
      assert.equal(r.status, 503, r.text);
      assert.equal(r.json.allowed, false);
      assert.equal(r.json.error_code, "rate_limit_unavailable");
      assert.equal(r.json.denial.error_code, "rate_limit_unavailable");
      assert.match(r.json.reasoning, /^rate_limit_unavailable: the shared rate-limit store/);
      const h = await fetch(gw.url + "/health");
      assert.equal(h.status, 200);
    }
    // every agent with a limit asks Redis: another one is refused too
    assert.equal((await proxy(b, KEYS.calm)).status, 503);
    redis = await startRedis(port, dir);
    for (const gw of [a, b]) {
      const r = await proxy(gw, KEYS.steady);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.allowed, true);
    }
    assert.doesNotMatch(a.stderr() + b.stderr(), /PASSWORD|sk-5d6e7f8a9b/);
  });

  it("with fail_mode: open, calls pass while Redis does not answer (and the log says so)", async () => {
    const dead = await freePort();
    open = await startGateway(["--policy", path.join(dir, "open.yaml"), "--state-dir", path.join(dir, "o"), "--redis", `redis://:s3cret-pw@127.0.0.1:${dead}`]);
    const r = await proxy(open, KEYS.hasty);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.allowed, true);
    assert.ok(await waitFor(() => /rate limits NOT applied \(policy fail_mode: open\)/.test(open.stderr())), open.stderr());
    assert.doesNotMatch(open.stderr(), /s3cret-pw/, "the password is never logged");
  });

  it("refuses a malformed --redis URL at start-up without echoing it", async () => {
    requireClampd();
    const p = spawn(CLAMPD, ["gateway", "--listen", "127.0.0.1:0", "--policy", path.join(dir, "closed.yaml"), "--state-dir", path.join(dir, "x"), "--redis", "http://:pw-xyz@host"], { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    p.stderr.on("data", (d) => (err += d));
    const code = await new Promise((res) => p.on("exit", res));
    assert.equal(code, 1, err);
    assert.match(err, /--redis wants redis:\/\//);
    assert.doesNotMatch(err, /pw-xyz/);
  });
});

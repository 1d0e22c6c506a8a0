// Shared helpers for clampd's end-to-end tests.
//
// Two ways to talk to an MCP server here:
//   - connect(): the official SDK Client over StdioClientTransport, either straight to a server
//     ("direct") or to `clampd mcp --downstream <server>` ("through clampd");
//   - LinePeer: a raw newline-delimited JSON peer that writes and reads exact bytes, for tests
//     about byte faithfulness, bad input and process lifecycle.
import { spawn, execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport, getDefaultEnvironment } from "@modelcontextprotocol/sdk/client/stdio.js";

export const E2E_DIR = path.dirname(fileURLToPath(import.meta.url));
export const FIXTURES = path.join(E2E_DIR, "fixtures");
export const NODE = process.execPath;
export const CLAMPD = path.resolve(E2E_DIR, process.env.CLAMPD_BIN ?? "../../build/clampd");

export const EVERYTHING = path.join(E2E_DIR, "node_modules/@modelcontextprotocol/server-everything/dist/index.js");
export const FILESYSTEM = path.join(E2E_DIR, "node_modules/@modelcontextprotocol/server-filesystem/dist/index.js");

export const HEX64 = /^[0-9a-f]{64}$/;

/** Fails (never skips) when the binary is missing: a missing binary must not look like a pass. */
export function requireClampd() {
  assert.ok(fs.existsSync(CLAMPD), `clampd binary not found at ${CLAMPD} (build it with make, or set CLAMPD_BIN)`);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// temp dirs

const tmpDirs = [];
export function tmpDir(prefix = "clampd-e2e-") {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tmpDirs.push(d);
  return d;
}
process.on("exit", () => {
  if (process.env.CLAMPD_E2E_KEEP) return;
  for (const d of tmpDirs) {
    try {
      fs.rmSync(d, { recursive: true, force: true });
    } catch {}
  }
});

// ---------------------------------------------------------------------------------------------
// command lines

/** Quotes one word for a POSIX shell (clampd splits --downstream the same way). */
export function shQuote(word) {
  if (/^[A-Za-z0-9_\/.,:=@%+-]+$/.test(word)) return word;
  return "'" + word.replace(/'/g, "'\\''") + "'";
}
export const shJoin = (argv) => argv.map(shQuote).join(" ");

/** argv for `clampd mcp` relaying to the downstream argv. */
export function clampdArgs(downstreamArgv, { stateDir, agentId, env = {}, pinMode, relistInterval, verbose, extra = [] } = {}) {
  const args = ["mcp", "--downstream", shJoin(downstreamArgv)];
  if (stateDir) args.push("--state-dir", stateDir);
  if (agentId) args.push("--agent-id", agentId);
  for (const [k, v] of Object.entries(env)) args.push("--env", `${k}=${v}`);
  if (pinMode) args.push("--pin-mode", pinMode);
  if (relistInterval !== undefined) args.push("--relist-interval", String(relistInterval));
  if (verbose) args.push("-v");
  args.push(...extra);
  return args;
}

/**
 * Starts `clampd gateway --listen LISTEN -v ...args` (default a free loopback port) and
 * resolves once it prints its address: {proc, url, stderr()}. A gateway that has not started
 * within 120 s (the first start compiles the rules: ~30 s, much more under ASan) is killed,
 * never left behind.
 */
export function startGateway(args, { listen = "127.0.0.1:0", env = {} } = {}) {
  requireClampd();
  return new Promise((resolve, reject) => {
    const p = spawn(CLAMPD, ["gateway", "--listen", listen, "-v", ...args], {
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, ...env },
    });
    let err = "";
    const t = setTimeout(() => {
      p.kill("SIGKILL");
      reject(new Error("gateway did not start:\n" + err));
    }, 120000);
    p.stderr.on("data", (d) => {
      err += d;
      const m = /listening on (http:\/\/[0-9.]+:\d+)/.exec(err);
      if (m && !p.url) {
        clearTimeout(t);
        p.url = m[1];
        resolve({ proc: p, url: m[1], stderr: () => err });
      }
    });
    p.on("exit", (code) => {
      clearTimeout(t);
      if (!p.url) reject(new Error(`gateway exited ${code}:\n${err}`));
    });
  });
}

/** Stops a gateway of startGateway() with signal; resolves with its exit code (null if killed). */
export async function stopGateway(gw, signal = "SIGTERM") {
  if (!gw) return null;
  return new Promise((res) => {
    if (gw.proc.exitCode !== null || gw.proc.signalCode !== null) return res(gw.proc.exitCode);
    gw.proc.on("exit", (c) => res(c));
    gw.proc.kill(signal);
  });
}

/** Runs a `clampd` subcommand to completion (e.g. `tools list`). */
export function runClampd(args, { timeout = 20000, input } = {}) {
  return new Promise((resolve) => {
    const p = spawn(CLAMPD, args, { stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"] });
    if (input !== undefined) {
      p.stdin.on("error", () => {});
      p.stdin.end(input);
    }
    let out = "";
    let err = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (err += d));
    const t = setTimeout(() => p.kill("SIGKILL"), timeout);
    p.on("error", (e) => {
      clearTimeout(t);
      resolve({ code: -1, signal: null, stdout: out, stderr: String(e) });
    });
    p.on("close", (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal, stdout: out, stderr: err });
    });
  });
}

// ---------------------------------------------------------------------------------------------
// SDK sessions

/**
 * Connects an SDK Client. `target` is {direct: argv} or {clampd: argv, ...clampdOptions}.
 * Returns {client, transport, stderr(), messages, errors, close()}:
 *   messages: every JSON-RPC message the client received, as parsed JSON, before SDK validation;
 *   errors:   everything the SDK reported through onerror (e.g. responses to unknown ids).
 */
export async function connect(target, { capabilities = {}, handlers = [], notifications = [], env = {}, clientInfo } = {}) {
  let command;
  let args;
  if (target.direct) {
    [command, ...args] = target.direct;
  } else {
    requireClampd();
    command = CLAMPD;
    args = clampdArgs(target.clampd, target);
  }
  // The SDK passes only a few variables on; clampd's compiled-rules cache location and rule
  // packs (CLAMPD_RULES) too.
  const cache = {};
  for (const k of ["XDG_CACHE_HOME", "CLAMPD_RULES"]) if (process.env[k]) cache[k] = process.env[k];
  const transport = new StdioClientTransport({ command, args, env: { ...getDefaultEnvironment(), ...cache, ...env }, stderr: "pipe" });
  let stderr = "";
  transport.stderr.on("data", (d) => (stderr += d));
  const client = new Client(clientInfo ?? { name: "clampd-e2e", version: "1.0.0" }, { capabilities });
  for (const [schema, fn] of handlers) client.setRequestHandler(schema, fn);
  for (const [schema, fn] of notifications) client.setNotificationHandler(schema, fn);
  const messages = [];
  const errors = [];
  client.onerror = (e) => errors.push(e);
  // Tap the transport: Protocol installs its onmessage in connect(); wrap it once set.
  const origStart = transport.start.bind(transport);
  transport.start = async () => {
    const inner = transport.onmessage;
    transport.onmessage = (m, extra) => {
      messages.push(m);
      inner?.(m, extra);
    };
    return origStart();
  };
  try {
    await client.connect(transport);
  } catch (e) {
    e.stderr = () => stderr;
    try {
      await transport.close();
    } catch {}
    throw e;
  }
  return {
    client,
    transport,
    messages,
    errors,
    stderr: () => stderr,
    pid: transport.pid,
    close: async () => {
      try {
        await client.close();
      } catch {}
    },
  };
}

// ---------------------------------------------------------------------------------------------
// contract hash (DESIGN.md section 3), computed independently of clampd

function codePointCompare(a, b) {
  const A = Array.from(a);
  const B = Array.from(b);
  const n = Math.min(A.length, B.length);
  for (let i = 0; i < n; i++) {
    const d = A[i].codePointAt(0) - B[i].codePointAt(0);
    if (d !== 0) return d;
  }
  return A.length - B.length;
}

/** Canonical JSON: keys sorted by code point, no whitespace, ECMAScript (= RFC 8785) numbers. */
export function canonicalJson(v) {
  if (v === null || typeof v !== "object") return JSON.stringify(v);
  if (Array.isArray(v)) return "[" + v.map(canonicalJson).join(",") + "]";
  const keys = Object.keys(v).filter((k) => v[k] !== undefined).sort(codePointCompare);
  return "{" + keys.map((k) => JSON.stringify(k) + ":" + canonicalJson(v[k])).join(",") + "}";
}

export function contractHash(tool) {
  const text = canonicalJson({ description: tool.description ?? "", name: tool.name, parameters: tool.inputSchema ?? {} });
  return createHash("sha256").update(text, "utf8").digest("hex");
}

/**
 * Checks that `viaClampd` (a tools/list result through clampd) equals `direct` apart from
 * clampd's `_meta` annotations, and that every tool carries the right contract hash.
 */
export function assertToolsEqualModuloMeta(viaClampd, direct) {
  assert.deepEqual(
    viaClampd.tools.map((t) => t.name),
    direct.tools.map((t) => t.name),
    "same tools in the same order",
  );
  const stripped = structuredClone(viaClampd);
  for (let i = 0; i < stripped.tools.length; i++) {
    const t = stripped.tools[i];
    const d = direct.tools[i];
    assert.ok(t._meta && typeof t._meta === "object", `tool ${t.name} has _meta`);
    const h = t._meta["clampd/contract_hash"];
    assert.match(String(h), HEX64, `tool ${t.name} has a 64-hex clampd/contract_hash`);
    assert.equal(h, contractHash(d), `contract hash of ${t.name} matches DESIGN.md section 3`);
    for (const k of Object.keys(t._meta)) if (k.startsWith("clampd/")) delete t._meta[k];
    if (Object.keys(t._meta).length === 0 && !(d._meta && typeof d._meta === "object")) delete t._meta;
  }
  assert.deepEqual(stripped, direct);
}

/** A copy of a list result with clampd/* keys removed from each item's _meta (and empty _meta dropped). */
export function withoutClampdMeta(result, key) {
  const r = structuredClone(result);
  for (const item of r[key] ?? []) {
    if (!item._meta) continue;
    for (const k of Object.keys(item._meta)) if (k.startsWith("clampd/")) delete item._meta[k];
    if (Object.keys(item._meta).length === 0) delete item._meta;
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// denials

export function assertDenial(result, tool, errorCode) {
  assert.equal(result.isError, true, `denial of ${tool} has isError: true; got ${JSON.stringify(result)}`);
  assert.ok(Array.isArray(result.content) && result.content.length >= 1, "denial has content");
  const item = result.content[0];
  assert.equal(item.type, "text");
  const text = item.text;
  assert.ok(
    text.startsWith(`[clampd] Tool call '${tool}' was BLOCKED.`),
    `denial text starts with the BLOCKED line; got ${JSON.stringify(text)}`,
  );
  assert.match(text, new RegExp(`^Reason: ${errorCode}\\b`, "m"), `Reason line names ${errorCode}`);
  assert.match(text, /^Risk score: /m, "Risk score line");
  assert.match(text, /^Request ID: \S+/m, "Request ID line");
  const denial = result._meta?.["clampd/denial"];
  assert.ok(denial && typeof denial === "object", `_meta["clampd/denial"] present; got ${JSON.stringify(result._meta)}`);
  assert.equal(denial.error_code, errorCode);
  assert.ok(Array.isArray(denial.rule_ids), "rule_ids is an array");
  assert.equal(typeof denial.risk, "number");
  assert.ok(denial.risk >= 0 && denial.risk <= 1, "risk in 0..1");
  assert.equal(typeof denial.request_id, "string");
  assert.ok(denial.request_id.length > 0);
  assert.match(text, new RegExp(`^Request ID: ${escapeRe(denial.request_id)}\\s*$`, "m"), "Request ID line matches _meta");
  return { text, denial };
}

export const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

// ---------------------------------------------------------------------------------------------
// raw line peer

/**
 * Spawns a process and talks newline-delimited bytes with it.
 * lines: every stdout line as a Buffer (without "\n"); stderr(): all stderr so far.
 */
export class LinePeer {
  constructor(command, args, { env = process.env, cwd } = {}) {
    this.proc = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"], env, cwd });
    this.pid = this.proc.pid;
    this.lines = [];
    this.taken = new Set();
    this._chunks = [];
    this._stderr = [];
    this._waiters = [];
    this.spawnError = null;
    this.stdoutEnded = false;
    this.proc.on("error", (e) => {
      this.spawnError = e;
      this._wake();
    });
    this.proc.stdin.on("error", () => {}); // EPIPE after the peer exits: the tests look at exit status instead
    this.proc.stdout.on("data", (chunk) => this._onData(chunk));
    this.proc.stdout.on("end", () => {
      this.stdoutEnded = true;
      this._wake();
    });
    this.proc.stderr.on("data", (d) => this._stderr.push(d));
    this.exited = new Promise((resolve) => this.proc.on("close", (code, signal) => resolve({ code, signal })));
    this.exited.then(() => this._wake());
  }

  static clampd(downstreamArgv, opts = {}) {
    requireClampd();
    return new LinePeer(CLAMPD, clampdArgs(downstreamArgv, opts), { env: opts.processEnv ?? process.env });
  }

  _onData(chunk) {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      if (nl < 0) break;
      this._chunks.push(chunk.subarray(start, nl));
      const line = this._chunks.length === 1 ? Buffer.from(this._chunks[0]) : Buffer.concat(this._chunks);
      this._chunks = [];
      this.lines.push(line);
      start = nl + 1;
    }
    if (start < chunk.length) this._chunks.push(chunk.subarray(start));
    this._wake();
  }

  _wake() {
    const w = this._waiters;
    this._waiters = [];
    for (const f of w) f();
  }

  stderr() {
    return Buffer.concat(this._stderr).toString("utf8");
  }

  /** Writes one line (a string, Buffer or object to JSON.stringify) followed by "\n". */
  send(line) {
    let buf;
    if (Buffer.isBuffer(line)) buf = line;
    else if (typeof line === "string") buf = Buffer.from(line, "utf8");
    else buf = Buffer.from(JSON.stringify(line), "utf8");
    return new Promise((resolve) => {
      const ok = this.proc.stdin.write(Buffer.concat([buf, Buffer.from("\n")]));
      if (ok) resolve();
      else this.proc.stdin.once("drain", resolve);
    });
  }

  /** Parsed JSON of line i, or undefined when it is not JSON. */
  parsed(i) {
    try {
      return JSON.parse(this.lines[i].toString("utf8"));
    } catch {
      return undefined;
    }
  }

  /**
   * Waits for the first not yet taken stdout line whose parsed JSON satisfies pred; marks it
   * taken and returns {msg, raw (Buffer), index}. Rejects on timeout or when stdout ends first.
   */
  async waitFor(pred, { timeout = 15000, what = "a matching line" } = {}) {
    const deadline = Date.now() + timeout;
    let scanned = 0;
    for (;;) {
      for (; scanned < this.lines.length; scanned++) {
        if (this.taken.has(scanned)) continue;
        const msg = this.parsed(scanned);
        if (msg !== undefined && pred(msg)) {
          this.taken.add(scanned);
          return { msg, raw: this.lines[scanned], index: scanned };
        }
      }
      if (this.spawnError) throw this.spawnError;
      if (this.stdoutEnded) throw new Error(`stdout ended while waiting for ${what}; stderr:\n${this.stderr()}`);
      const left = deadline - Date.now();
      if (left <= 0) {
        const seen = this.lines.map((l) => l.subarray(0, 300).toString()).join("\n");
        throw new Error(`timed out waiting for ${what}; stdout lines:\n${seen}\nstderr:\n${this.stderr()}`);
      }
      await new Promise((resolve) => {
        const t = setTimeout(resolve, left);
        this._waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  response(id, opts) {
    return this.waitFor((m) => m && !Array.isArray(m) && m.id === id && !("method" in m) && ("result" in m || "error" in m), {
      what: `the response to id ${JSON.stringify(id)}`,
      ...opts,
    });
  }

  _nextId = 1000;
  async request(method, params, opts) {
    const id = this._nextId++;
    const msg = { jsonrpc: "2.0", id, method };
    if (params !== undefined) msg.params = params;
    await this.send(msg);
    return (await this.response(id, opts)).msg;
  }

  notify(method, params) {
    const msg = { jsonrpc: "2.0", method };
    if (params !== undefined) msg.params = params;
    return this.send(msg);
  }

  /** initialize + notifications/initialized; returns the initialize response. */
  async initialize({ capabilities = {}, protocolVersion = "2025-06-18" } = {}) {
    const r = await this.request("initialize", {
      protocolVersion,
      capabilities,
      clientInfo: { name: "clampd-e2e-raw", version: "1.0.0" },
    });
    await this.notify("notifications/initialized");
    return r;
  }

  closeStdin() {
    this.proc.stdin.end();
  }

  async waitExit(timeout = 15000) {
    let t;
    const r = await Promise.race([
      this.exited,
      new Promise((resolve) => (t = setTimeout(() => resolve(null), timeout))),
    ]);
    clearTimeout(t);
    return r;
  }

  kill(signal = "SIGKILL") {
    try {
      this.proc.kill(signal);
    } catch {}
  }
}

// ---------------------------------------------------------------------------------------------
// processes

/** State letter of a pid from /proc, or null when there is no such process. */
export function procState(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
  } catch {
    return null;
  }
}

/** Alive = exists and is not a zombie (an un-reaped dead process is gone for our purposes). */
export const alive = (pid) => {
  const s = procState(pid);
  return s !== null && s !== "Z" && s !== "X";
};

export function pgidOf(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
}

/** Live (non-zombie) pids in process group pgid. */
export function liveMembersOfGroup(pgid) {
  const out = [];
  for (const e of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(f[2]) === pgid && f[0] !== "Z" && f[0] !== "X") out.push(Number(e));
    } catch {}
  }
  return out;
}

export async function waitFor(cond, { timeout = 5000, interval = 50 } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() > deadline) return false;
    await sleep(interval);
  }
}

export async function waitForFile(file, { timeout = 10000 } = {}) {
  const ok = await waitFor(() => {
    try {
      return fs.statSync(file).size > 0;
    } catch {
      return false;
    }
  }, { timeout });
  assert.ok(ok, `file ${file} appeared`);
  // the writer writes once with writeFileSync after a rename; read it
  return fs.readFileSync(file, "utf8");
}

export function killQuietly(pid, sig = "SIGKILL") {
  try {
    process.kill(pid, sig);
  } catch {}
}

export { execFileSync };

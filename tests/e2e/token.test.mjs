// Scope tokens (docs/tokens.md): `clampd keys jwks|rotate` and `clampd token mint|verify`.
// The tokens are checked with an independent JWS implementation (the `jose` package), the
// call binding is recomputed here from DESIGN.md §3's canonical JSON, and the stand-alone C
// verifier (include/clampd/verify.h, built alone as clampd-verify-example) is run the way a
// downstream would run it.
import { describe, it, before } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import * as jose from "jose";
import { runClampd, tmpDir, canonicalJson, requireClampd, sleep, CLAMPD } from "./lib.mjs";

const EXAMPLE = path.join(path.dirname(CLAMPD), "clampd-verify-example");
const B64URL = /^[A-Za-z0-9_-]+$/;

/** The call binding of DESIGN.md §3, computed without clampd. */
const binding = (tool, args) =>
  createHash("sha256").update(canonicalJson({ params: args ?? {}, tool }), "utf8").digest("hex");

async function keysJwks(stateDir) {
  const r = await runClampd(["keys", "jwks", "--state-dir", stateDir]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

/** `clampd token mint`; argsText is the --arguments JSON text as given. */
async function mint(stateDir, tool, argsText, extra = []) {
  const r = await runClampd(["token", "mint", "--tool", tool, "--arguments", argsText, "--state-dir", stateDir, ...extra]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.split("\n").length, 2, "one token, one line");
  return r.stdout.trim();
}

function writeJwks(dir, set, name = "jwks.json") {
  const f = path.join(dir, name);
  fs.writeFileSync(f, JSON.stringify(set));
  return f;
}

/** `clampd token verify` with a replay cache in dir. */
function verify(dir, token, tool, argsText, jwksSrc, extra = []) {
  return runClampd([
    "token", "verify", token, "--tool", tool, "--arguments", argsText, "--jwks", jwksSrc,
    "--replay-cache", path.join(dir, "seen"), ...extra,
  ]);
}

function assertRefused(r, reason) {
  assert.equal(r.code, 1, `exit ${r.code}: ${r.stderr}`);
  assert.match(r.stderr, new RegExp(`^clampd token: invalid: ${reason}: `, "m"));
  assert.equal(r.stdout, "");
}

describe("clampd keys", () => {
  before(requireClampd);

  it("makes a key on first use: keys/ 0700, keyring 0600, a standard Ed25519 JWKS keyed by RFC 7638 thumbprint", async () => {
    const dir = tmpDir();
    const set = await keysJwks(dir);
    assert.equal(set.keys.length, 1);
    const [k] = set.keys;
    assert.deepEqual(Object.keys(k).sort(), ["alg", "crv", "kid", "kty", "use", "x"]);
    assert.equal(k.kty, "OKP");
    assert.equal(k.crv, "Ed25519");
    assert.equal(k.alg, "EdDSA");
    assert.equal(k.use, "sig");
    assert.match(k.x, B64URL);
    assert.equal(Buffer.from(k.x, "base64url").length, 32);
    assert.equal(k.kid, await jose.calculateJwkThumbprint({ kty: k.kty, crv: k.crv, x: k.x }, "sha256"));
    assert.equal(fs.statSync(path.join(dir, "keys")).mode & 0o777, 0o700);
    assert.equal(fs.statSync(path.join(dir, "keys/keyring")).mode & 0o777, 0o600);
    // the same key next time
    assert.deepEqual(await keysJwks(dir), set);
  });

  it("exits 2 on a usage error and explains itself with --help", async () => {
    for (const args of [["keys"], ["keys", "spin"], ["keys", "jwks", "extra"]]) {
      const r = await runClampd(args);
      assert.equal(r.code, 2, args.join(" "));
      assert.match(r.stderr, /Usage: clampd keys rotate/);
    }
    const h = await runClampd(["keys", "--help"]);
    assert.equal(h.code, 0);
    assert.match(h.stdout, /stays in the JWKS, marked retired/);
  });
});

describe("clampd token mint", () => {
  before(requireClampd);

  it("makes a standard JWS that jose verifies, with the documented header and claims", async () => {
    const dir = tmpDir();
    // numbers and strings whose canonical form differs from their text
    const argsText = '{"path":"/srv/data/caf\\u00e9 \\ud83d\\ude00.txt","n":1.0,"big":1e21,"z":-0,"opts":{"b":[true,null],"a":"x\\ty"}}';
    const token = await mint(dir, "read_file", argsText, ["--scope", "files:read files:list", "--agent-id", "agent-7", "--iss", "clampd-e2e"]);
    const set = await keysJwks(dir);
    const now = Math.floor(Date.now() / 1000);
    const { payload, protectedHeader } = await jose.jwtVerify(token, jose.createLocalJWKSet(set), { algorithms: ["EdDSA"] });
    assert.deepEqual(protectedHeader, { alg: "EdDSA", kid: set.keys[0].kid, typ: "JWT" });
    assert.deepEqual(Object.keys(payload).sort(), ["binding", "exp", "iat", "iss", "jti", "scope", "sub", "tool"]);
    assert.equal(payload.sub, "agent-7");
    assert.equal(payload.iss, "clampd-e2e");
    assert.equal(payload.tool, "read_file");
    assert.equal(payload.scope, "files:read files:list");
    assert.equal(payload.binding, binding("read_file", JSON.parse(argsText)));
    assert.ok(Math.abs(payload.iat - now) <= 5, `iat ${payload.iat} vs now ${now}`);
    assert.equal(payload.exp - payload.iat, 60);
    assert.match(payload.jti, /^[A-Za-z0-9_-]{22}$/);
    assert.equal(Buffer.from(payload.jti, "base64url").length, 16);
  });

  it("binds absent arguments as {}, honours --ttl, and draws a new jti every time", async () => {
    const dir = tmpDir();
    const set = jose.createLocalJWKSet(await keysJwks(dir));
    const r = await runClampd(["token", "mint", "--tool", "list", "--ttl", "300", "--state-dir", dir]);
    assert.equal(r.code, 0, r.stderr);
    const a = await jose.jwtVerify(r.stdout.trim(), set);
    assert.equal(a.payload.binding, binding("list", {}));
    assert.equal(a.payload.exp - a.payload.iat, 300);
    assert.equal(a.payload.sub, "local");
    assert.equal(a.payload.scope, "");
    assert.equal(a.payload.iss, undefined);
    const b = await jose.jwtVerify(await mint(dir, "list", "{}"), set);
    assert.equal(b.payload.binding, a.payload.binding);
    assert.notEqual(b.payload.jti, a.payload.jti);
  });

  it("refuses what it cannot sign", async () => {
    const dir = tmpDir();
    for (const extra of [["--ttl", "3601"], ["--ttl", "0"], ["--scope", "a  b"], ["--arguments", "{\"a\":1,\"a\":2}"], ["--agent-id", ""]]) {
      const r = await runClampd(["token", "mint", "--tool", "t", "--state-dir", dir, ...extra]);
      assert.notEqual(r.code, 0, extra.join(" "));
      assert.equal(r.stdout, "");
    }
  });
});

describe("clampd token verify", () => {
  before(requireClampd);
  const args = '{"path":"/srv/data/report.txt"}';

  it("accepts a token once, for its tool and arguments only", async () => {
    const dir = tmpDir();
    const jwks = writeJwks(dir, await keysJwks(dir));
    const token = await mint(dir, "read_file", args, ["--agent-id", "agent-7", "--scope", "files:read"]);
    assertRefused(await verify(dir, token, "read_file", '{"path":"/etc/shadow"}', jwks), "binding_mismatch");
    assertRefused(await verify(dir, token, "read_file", '{"path":"/srv/data/report.txt","recursive":true}', jwks), "binding_mismatch");
    assertRefused(await verify(dir, token, "write_file", args, jwks), "wrong_tool");
    // the refusals did not use it up; whitespace and key order do not change the binding
    const ok = await verify(dir, token, "read_file", ' { "path" : "/srv/data/report.txt" } ', jwks);
    assert.equal(ok.code, 0, ok.stderr);
    const claims = JSON.parse(ok.stdout);
    assert.equal(claims.sub, "agent-7");
    assert.equal(claims.scope, "files:read");
    assert.equal(claims.binding, binding("read_file", JSON.parse(args)));
    assert.equal(claims.kid, JSON.parse(fs.readFileSync(jwks)).keys[0].kid);
    // replayed: as it was, and with other params
    assertRefused(await verify(dir, token, "read_file", args, jwks), "replayed");
    assertRefused(await verify(dir, token, "read_file", '{"path":"/etc/shadow"}', jwks), "binding_mismatch");
    // a replay cache is kept in the state directory by default; --no-replay-cache keeps none
    const t2 = await mint(dir, "read_file", args);
    const base = ["token", "verify", t2, "--tool", "read_file", "--arguments", args, "--jwks", jwks, "--state-dir", dir];
    assert.equal((await runClampd(base)).code, 0);
    assertRefused(await runClampd(base), "replayed");
    assert.equal(fs.statSync(path.join(dir, "token-replay")).mode & 0o777, 0o600);
    const t3 = await mint(dir, "read_file", args);
    assert.equal((await runClampd([...base.slice(0, 2), t3, ...base.slice(3), "--no-replay-cache"])).code, 0);
    // the token may come on stdin
    const t4 = await mint(dir, "read_file", args);
    const r = await runClampd(["token", "verify", "-", "--tool", "read_file", "--arguments", args, "--jwks", jwks, "--no-replay-cache"], { input: t4 + "\n" });
    assert.equal(r.code, 0, r.stderr);
  });

  it("refuses forged, altered and expired tokens, as jose does", async () => {
    const dir = tmpDir();
    const set = await keysJwks(dir);
    const jwks = writeJwks(dir, set);
    const local = jose.createLocalJWKSet(set);
    const token = await mint(dir, "t", "{}", ["--ttl", "1"]);
    const [h, p, s] = token.split(".");
    const claims = JSON.parse(Buffer.from(p, "base64url"));

    // another signer under clampd's kid
    const { privateKey } = await jose.generateKeyPair("EdDSA", { crv: "Ed25519" });
    const forged = await new jose.SignJWT(claims).setProtectedHeader({ alg: "EdDSA", kid: set.keys[0].kid, typ: "JWT" }).sign(privateKey);
    await assert.rejects(jose.jwtVerify(forged, local), { code: "ERR_JWS_SIGNATURE_VERIFICATION_FAILED" });
    assertRefused(await verify(dir, forged, "t", "{}", jwks), "bad_signature");
    // an altered payload under the real signature
    const altered = [h, Buffer.from(JSON.stringify({ ...claims, scope: "admin" })).toString("base64url"), s].join(".");
    await assert.rejects(jose.jwtVerify(altered, local), { code: "ERR_JWS_SIGNATURE_VERIFICATION_FAILED" });
    assertRefused(await verify(dir, altered, "t", "{}", jwks), "bad_signature");
    // alg none, and HS256 keyed with the public key
    const none = [Buffer.from(JSON.stringify({ alg: "none", kid: set.keys[0].kid })).toString("base64url"), p, ""].join(".");
    assertRefused(await verify(dir, none, "t", "{}", jwks), "bad_format");
    const hs = await new jose.SignJWT(claims).setProtectedHeader({ alg: "HS256", kid: set.keys[0].kid }).sign(Buffer.from(set.keys[0].x, "base64url"));
    assertRefused(await verify(dir, hs, "t", "{}", jwks), "bad_alg");
    // a key clampd does not know
    const other = tmpDir();
    assertRefused(await verify(dir, await mint(other, "t", "{}"), "t", "{}", jwks), "unknown_kid");
    // expiry, seen by both
    await sleep(2100);
    await assert.rejects(jose.jwtVerify(token, local), { code: "ERR_JWT_EXPIRED" });
    assertRefused(await verify(dir, token, "t", "{}", jwks), "expired");
    assert.equal((await verify(dir, token, "t", "{}", jwks, ["--leeway", "60"])).code, 0);
  });

  it("fetches the JWKS from a URL", async () => {
    const dir = tmpDir();
    const body = JSON.stringify(await keysJwks(dir));
    const server = http.createServer((req, res) => {
      if (req.url === "/.well-known/jwks.json") {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(body);
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise((r) => server.listen(0, "127.0.0.1", r));
    const base = `http://127.0.0.1:${server.address().port}`;
    try {
      const token = await mint(dir, "t", "{}");
      const ok = await verify(dir, token, "t", "{}", `${base}/.well-known/jwks.json`);
      assert.equal(ok.code, 0, ok.stderr);
      const missing = await verify(dir, await mint(dir, "t", "{}"), "t", "{}", `${base}/nope`);
      assert.equal(missing.code, 2);
      assert.match(missing.stderr, /404/);
    } finally {
      server.close();
    }
  });

  it("exits 2 on usage errors", async () => {
    const dir = tmpDir();
    const jwks = writeJwks(dir, await keysJwks(dir));
    const cases = [
      ["token"],
      ["token", "verify", "x", "--jwks", jwks],
      ["token", "verify", "--tool", "t", "--jwks", jwks],
      ["token", "verify", "x", "--tool", "t"],
      ["token", "verify", "x", "--tool", "t", "--jwks", jwks, "--leeway", "301"],
      ["token", "verify", "x", "--tool", "t", "--jwks", path.join(dir, "absent.json")],
      ["token", "verify", "x", "--tool", "t", "--jwks", jwks, "--arguments", "{"],
    ];
    for (const args of cases) {
      const r = await runClampd(args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    }
    const h = await runClampd(["token", "--help"]);
    assert.equal(h.code, 0);
    assert.match(h.stdout, /Usage: clampd token mint/);
    assert.match(h.stdout, /--jwks FILE\|URL\|-/);
  });
});

describe("key rotation", () => {
  before(requireClampd);

  it("keeps tokens of the retired key verifying with the new JWKS, and signs new ones with the new key", async () => {
    const dir = tmpDir();
    const prev = await keysJwks(dir);
    const oldToken = await mint(dir, "t", '{"a":1}');
    const r = await runClampd(["keys", "rotate", "--state-dir", dir]);
    assert.equal(r.code, 0, r.stderr);
    const next = await keysJwks(dir);
    assert.equal(next.keys.length, 2);
    assert.equal(next.keys[1].kid, prev.keys[0].kid);
    assert.notEqual(next.keys[0].kid, prev.keys[0].kid);
    assert.match(r.stdout, new RegExp(`signing key: ${next.keys[0].kid}`));
    assert.match(r.stdout, new RegExp(`retired key: ${prev.keys[0].kid}`));
    const newToken = await mint(dir, "t", '{"a":1}');
    assert.equal(jose.decodeProtectedHeader(newToken).kid, next.keys[0].kid);
    assert.equal(jose.decodeProtectedHeader(oldToken).kid, prev.keys[0].kid);
    const local = jose.createLocalJWKSet(next);
    for (const t of [oldToken, newToken]) {
      const { payload } = await jose.jwtVerify(t, local, { algorithms: ["EdDSA"] });
      assert.equal(payload.binding, binding("t", { a: 1 }));
    }
    const jwks = writeJwks(dir, next);
    for (const t of [oldToken, newToken]) {
      const v = await verify(dir, t, "t", '{"a":1}', jwks);
      assert.equal(v.code, 0, v.stderr);
    }
    // the old JWKS does not know the new key
    await assert.rejects(jose.jwtVerify(await mint(dir, "t", "{}"), jose.createLocalJWKSet(prev)), { code: "ERR_JWKS_NO_MATCHING_KEY" });
    assertRefused(await verify(dir, await mint(dir, "t", "{}"), "t", "{}", writeJwks(dir, prev, "old.json")), "unknown_kid");
    // the retired key's secret is gone from disk: one seed, one public key
    const ring = fs.readFileSync(path.join(dir, "keys/keyring"), "utf8").trim().split("\n");
    assert.deepEqual(ring.map((l) => l.split(" ")[0]), ["clampd-keyring", "current", "retired"]);
    assert.equal(ring[2].split(" ")[2], prev.keys[0].x);
  });
});

describe("the stand-alone verifier (include/clampd/verify.h)", () => {
  before(() => assert.ok(fs.existsSync(EXAMPLE), `${EXAMPLE} not built (make)`));

  it("checks the tokens in tools/call params as a downstream would", async () => {
    const dir = tmpDir();
    const jwks = writeJwks(dir, await keysJwks(dir));
    const args = { path: "/srv/data/report.txt" };
    const token = await mint(dir, "read_file", JSON.stringify(args), ["--agent-id", "agent-7", "--scope", "files:read"]);
    const call = (a, t = token) => JSON.stringify({ name: "read_file", arguments: a, _meta: { "clampd/scope_token": t } });
    const input = [
      call({ path: "/etc/shadow" }),
      call(args),
      call(args),
      JSON.stringify({ name: "read_file", arguments: args }),
    ].join("\n") + "\n";
    const r = spawnSync(EXAMPLE, [jwks], { input, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const out = r.stdout.trim().split("\n");
    assert.match(out[0], /^refused binding_mismatch: /);
    assert.equal(out[1], "valid agent-7 files:read");
    assert.match(out[2], /^refused replayed: /);
    assert.match(out[3], /^refused no_token: /);
  });
});

describe("scope tokens on forwarded calls (clampd mcp --scope-tokens)", () => {
  it("every allowed call reaches the server with a token bound to it, verifiable by jose and clampd", async () => {
    const dir = tmpDir();
    const stateDir = path.join(dir, "state");
    const fixture = path.join(path.dirname(CLAMPD), "../tests/e2e/fixtures/metaecho.mjs");
    const { connect, NODE } = await import("./lib.mjs");
    const s = await connect({ clampd: [NODE, fixture], stateDir, agentId: "agent-7", extra: ["--scope-tokens"] });
    try {
      await s.client.listTools();
      const args = { text: "caf\u00e9 \u2603", n: 1.5 };
      // a client-supplied token must never be passed on
      const r = await s.client.callTool({ name: "echo_meta", arguments: args, _meta: { "clampd/scope_token": "forged", other: 1 } });
      assert.notEqual(r.isError, true, JSON.stringify(r));
      const seen = JSON.parse(Buffer.from(r.content[0].text, "hex").toString());
      assert.deepEqual(seen.arguments, args, "the arguments arrive as sent");
      assert.equal(seen._meta.other, 1, "the client's other _meta entries are kept");
      const token = seen._meta["clampd/scope_token"];
      assert.notEqual(token, "forged");
      const jwks = jose.createLocalJWKSet(await keysJwks(stateDir));
      const { payload, protectedHeader } = await jose.jwtVerify(token, jwks, { algorithms: ["EdDSA"] });
      assert.equal(protectedHeader.alg, "EdDSA");
      assert.equal(payload.sub, "agent-7");
      assert.equal(payload.tool, "echo_meta");
      assert.equal(payload.binding, binding("echo_meta", args));
      assert.ok(payload.exp - payload.iat === 60);
      // the downstream's own check, and a replay of the same token with other arguments
      const jwksFile = writeJwks(dir, await keysJwks(stateDir));
      let v = await verify(dir, token, "echo_meta", JSON.stringify(args), jwksFile);
      assert.equal(v.code, 0, v.stderr);
      v = await verify(dir, token, "echo_meta", JSON.stringify({ ...args, text: "other" }), jwksFile);
      assertRefused(v, "binding_mismatch");
      // a call without _meta gets one
      const r2 = await s.client.callTool({ name: "echo_meta", arguments: {} });
      assert.match(JSON.parse(Buffer.from(r2.content[0].text, "hex").toString())._meta["clampd/scope_token"], /^[\w-]+\.[\w-]+\.[\w-]+$/);
    } finally {
      await s.close();
    }
  });
});

describe("scope tokens are only clampd's", () => {
  it("without --scope-tokens a client-supplied token is removed, not passed on", async () => {
    const dir = tmpDir();
    const fixture = path.join(path.dirname(CLAMPD), "../tests/e2e/fixtures/metaecho.mjs");
    const { connect, NODE } = await import("./lib.mjs");
    const s = await connect({ clampd: [NODE, fixture], stateDir: path.join(dir, "state") });
    try {
      await s.client.listTools();
      const r = await s.client.callTool({ name: "echo_meta", arguments: { text: "x" }, _meta: { "clampd/scope_token": "forged", keep: true } });
      const seen = JSON.parse(Buffer.from(r.content[0].text, "hex").toString());
      assert.deepEqual(seen._meta, { keep: true });
    } finally {
      await s.close();
    }
  });
});


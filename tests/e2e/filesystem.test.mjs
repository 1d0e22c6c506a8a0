// server-filesystem on a temp dir: the same file operations directly and through clampd give the
// same results and the same effects on disk.
import { describe, it, before } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { connect, tmpDir, NODE, FILESYSTEM, assertToolsEqualModuloMeta } from "./lib.mjs";

const CONTENT = "héllo, wörld ✓\nline 2 — with \"quotes\" and \\backslashes\\\n\ttabbed line\n";

/** The script, run against one session; returns every result plus a snapshot of the dir. */
async function script(s, root) {
  const call = (name, args) => s.client.callTool({ name, arguments: args });
  const out = {};
  out.tools = await s.client.listTools();
  out.allowed = await call("list_allowed_directories", {});
  out.write = await call("write_file", { path: path.join(root, "notes.txt"), content: CONTENT });
  out.mkdir = await call("create_directory", { path: path.join(root, "sub/deeper") });
  out.write2 = await call("write_file", { path: path.join(root, "sub/deeper/data.json"), content: JSON.stringify({ a: [1, 2, 3], b: "ü" }) });
  out.readText = await call("read_text_file", { path: path.join(root, "notes.txt") });
  out.readHead = await call("read_text_file", { path: path.join(root, "notes.txt"), head: 1 });
  out.readDeprecated = await call("read_file", { path: path.join(root, "notes.txt") });
  out.readMany = await call("read_multiple_files", { paths: [path.join(root, "notes.txt"), path.join(root, "sub/deeper/data.json")] });
  out.edit = await call("edit_file", { path: path.join(root, "notes.txt"), edits: [{ oldText: "line 2", newText: "LINE TWO" }], dryRun: false });
  out.list = await call("list_directory", { path: root });
  out.tree = await call("directory_tree", { path: root });
  out.search = await call("search_files", { path: root, pattern: "*.json" });
  out.move = await call("move_file", { source: path.join(root, "sub/deeper/data.json"), destination: path.join(root, "moved.json") });
  out.listAfter = await call("list_directory", { path: root });
  out.missing = await call("read_text_file", { path: path.join(root, "does-not-exist.txt") });
  out.disk = {
    notes: fs.readFileSync(path.join(root, "notes.txt"), "utf8"),
    moved: fs.readFileSync(path.join(root, "moved.json"), "utf8"),
    entries: fs.readdirSync(root).sort(),
  };
  return out;
}

describe("server-filesystem: direct vs through clampd", () => {
  const root = path.join(fs.realpathSync(tmpDir()), "root");
  let direct;
  let viaClampd;

  before(async () => {
    // Same path for both runs (paths appear in results): run direct, reset, run through clampd.
    const argv = [NODE, FILESYSTEM, root];
    fs.mkdirSync(root);
    const d = await connect({ direct: argv });
    try {
      direct = await script(d, root);
    } finally {
      await d.close();
    }
    fs.rmSync(root, { recursive: true });
    fs.mkdirSync(root);
    const c = await connect({ clampd: argv, stateDir: tmpDir() });
    try {
      viaClampd = await script(c, root);
      viaClampd.stderr = c.stderr();
    } finally {
      await c.close();
    }
  });

  it("the direct run did what the script meant", () => {
    assert.equal(direct.readText.content[0].text, CONTENT);
    assert.equal(direct.readText.structuredContent.content, CONTENT);
    assert.equal(direct.readHead.content[0].text, "héllo, wörld ✓");
    assert.equal(direct.missing.isError, true);
    assert.deepEqual(direct.disk.entries, ["moved.json", "notes.txt", "sub"]);
    assert.match(direct.disk.notes, /LINE TWO/);
  });

  it("tools/list equal modulo clampd/contract_hash", () => {
    assert.ok(direct.tools.tools.some((t) => t.name === "read_text_file"));
    assertToolsEqualModuloMeta(viaClampd.tools, direct.tools);
  });

  for (const key of ["allowed", "write", "mkdir", "write2", "readText", "readHead", "readDeprecated", "readMany", "edit", "list", "tree", "search", "move", "listAfter", "missing"]) {
    it(`${key}: same result through clampd`, () => {
      assert.deepEqual(viaClampd[key], direct[key]);
    });
  }

  it("same effects on disk", () => {
    assert.deepEqual(viaClampd.disk, direct.disk);
  });

  it("the server's stderr banner reaches clampd's stderr", () => {
    assert.match(viaClampd.stderr, /Secure MCP Filesystem Server running on stdio/);
  });
});

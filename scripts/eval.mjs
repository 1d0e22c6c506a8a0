#!/usr/bin/env node
// make eval: the built-in rules against the labelled corpus (tests/corpus/*.jsonl), through
// `clampd inspect` exactly as a user runs it. Prints recall per malicious category and the
// false-positive rate on benign cases, per target.
//
//   node scripts/eval.mjs [--clampd build/clampd] [--misses] [--target arguments]
//                         [--half tune|holdout]
//
// A case counts as detected when clampd does not simply allow it: verdict flag or deny, or
// (results) something was redacted. The false-positive rate is given both ways: any
// detection, and deny only (what blocks a call or withholds a tool). --misses lists the
// malicious cases missed and the benign ones hit, with the rules, for tuning.
//
// The corpus is split in two halves by a hash of each case's id: rules are tuned looking
// only at the misses of the `tune` half, and the `holdout` half tells whether the tuning
// generalised. Without --half both halves are counted.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const clampd = path.resolve(root, opt("--clampd", "build/clampd"));
const showMisses = args.includes("--misses");
const only = opt("--target");
const half = opt("--half");
if (half && half !== "tune" && half !== "holdout") {
  console.error("eval: --half is tune or holdout");
  process.exit(2);
}
// FNV-1a of the id: stable across runs and machines
const halfOf = (id) => {
  let h = 0x811c9dc5;
  for (const ch of Buffer.from(String(id))) h = Math.imul(h ^ ch, 0x01000193) >>> 0;
  return h % 2 === 0 ? "tune" : "holdout";
};
const targets = { arguments: 0.005, description: 0.01, response: null }; // FPR targets
const RECALL_TARGET = 0.95;

const pct = (n, d) => (d ? ((100 * n) / d).toFixed(2).padStart(6) + "%" : "     -");
let failedTargets = 0;

for (const [target, fprTarget] of Object.entries(targets)) {
  if (only && only !== target) continue;
  const file = path.join(root, "tests/corpus", `${target}.jsonl`);
  if (!fs.existsSync(file)) {
    console.error(`eval: ${file} is missing`);
    process.exit(2);
  }
  const cases = fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l))
    .filter((c) => !half || halfOf(c.id) === half);
  const input = cases.map((c) => JSON.stringify(c.input)).join("\n") + "\n";
  const t0 = process.hrtime.bigint();
  const r = spawnSync(clampd, ["inspect", "--kind", target], { input, maxBuffer: 1 << 30, encoding: "utf8" });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0 && r.status !== 1) {
    console.error(`eval: clampd inspect failed (${r.status}): ${r.stderr}`);
    process.exit(2);
  }
  const out = r.stdout.trimEnd().split("\n").map((l) => JSON.parse(l));
  if (out.length !== cases.length) {
    console.error(`eval: ${cases.length} cases but ${out.length} answers`);
    process.exit(2);
  }
  const per = new Map();
  const misses = [];
  let errors = 0;
  out.forEach((o, i) => {
    const c = cases[i];
    if (o.error) {
      errors++;
      misses.push({ c, o, why: "error" });
      return;
    }
    const hit = o.verdict !== "allow" || o.result !== undefined;
    const key = c.label === "malicious" ? c.category : "(benign)";
    const e = per.get(key) ?? { n: 0, hit: 0, deny: 0 };
    e.n++;
    e.hit += hit ? 1 : 0;
    e.deny += o.verdict === "deny" ? 1 : 0;
    per.set(key, e);
    if ((c.label === "malicious") !== hit) misses.push({ c, o, why: hit ? "false positive" : "missed" });
  });

  console.log(`\n== ${target}${half ? ` (${half} half)` : ""}: ${cases.length} cases, ${(ms / 1000).toFixed(2)} s through clampd inspect${errors ? `, ${errors} input errors` : ""}`);
  console.log(`  ${"category".padEnd(22)} ${"cases".padStart(6)} ${"detected".padStart(9)} ${"recall".padStart(7)} ${"denied".padStart(7)}`);
  let mal = { n: 0, hit: 0, deny: 0 };
  for (const [k, e] of [...per.entries()].sort()) {
    if (k === "(benign)") continue;
    console.log(`  ${k.padEnd(22)} ${String(e.n).padStart(6)} ${String(e.hit).padStart(9)} ${pct(e.hit, e.n)} ${pct(e.deny, e.n)}`);
    mal = { n: mal.n + e.n, hit: mal.hit + e.hit, deny: mal.deny + e.deny };
  }
  const ben = per.get("(benign)") ?? { n: 0, hit: 0, deny: 0 };
  const recall = mal.n ? mal.hit / mal.n : 0;
  const fpr = ben.n ? ben.hit / ben.n : 0;
  console.log(`  ${"ALL malicious".padEnd(22)} ${String(mal.n).padStart(6)} ${String(mal.hit).padStart(9)} ${pct(mal.hit, mal.n)} ${pct(mal.deny, mal.n)}`);
  console.log(`  ${"benign".padEnd(22)} ${String(ben.n).padStart(6)}   FPR (flag, deny or redact) ${pct(ben.hit, ben.n)}, deny only ${pct(ben.deny, ben.n)}`);
  const recallOk = recall >= RECALL_TARGET;
  const fprOk = fprTarget === null || fpr <= fprTarget;
  console.log(
    `  target: recall >= ${RECALL_TARGET * 100}% ${recallOk ? "met" : "MISSED"}` +
      (fprTarget === null ? "" : `; FPR <= ${fprTarget * 100}% ${fprOk ? "met" : "MISSED"}`),
  );
  failedTargets += (recallOk ? 0 : 1) + (fprOk ? 0 : 1);
  if (showMisses)
    for (const { c, o, why } of misses)
      console.log(`    ${why.padEnd(14)} ${c.id} [${c.category}] ${JSON.stringify(o.rules ?? o.error)} ${JSON.stringify(c.input).slice(0, 220)}`);
}
console.log(`\neval: ${failedTargets ? `${failedTargets} target(s) missed` : "every target met"}`);

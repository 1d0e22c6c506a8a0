#!/usr/bin/env node
// Reads the checks.json files that `conformance server -o DIR` wrote for each
// configuration under OUT (see run.sh), prints the per-scenario table and the
// closing line `conformance: N passed, M failed`, exits 1 if M > 0.
//
// A scenario's result in one run:
//   pass    no FAILURE and no WARNING check
//   warn    no FAILURE check, at least one WARNING (SHOULD-level finding)
//   FAIL    at least one FAILURE check
//   missing no checks.json (the suite crashed or timed out before it)
// The suite itself treats a scenario without FAILURE checks as passed.
// Per server and scenario: if it passes (pass/warn) directly, it counts as
// passed when the via-clampd result is at least as good (pass > warn > FAIL),
// else as failed. A fixture scenario failing directly counts as failed (fixture
// bug); a server-everything scenario failing directly is not counted (that
// server does not implement the suite's test tools/resources/prompts).

import fs from 'node:fs';
import path from 'node:path';

const out = process.argv[2];
const SERVERS = [
  { key: 'fixture', label: 'fixture', strict: true },
  { key: 'everything', label: 'server-everything', strict: false },
];
const RANK = { pass: 2, warn: 1, FAIL: 0, missing: 0 };

function loadRun(dir) {
  const res = new Map();
  const checksDir = path.join(dir, 'checks');
  if (!fs.existsSync(checksDir)) return fs.existsSync(dir) ? res : null;
  for (const d of fs.readdirSync(checksDir)) {
    const m = /^server-(.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$/.exec(d);
    if (!m) continue;
    let checks;
    try {
      checks = JSON.parse(fs.readFileSync(path.join(checksDir, d, 'checks.json'), 'utf8'));
    } catch {
      continue;
    }
    const failures = checks.filter((c) => c.status === 'FAILURE');
    const warnings = checks.filter((c) => c.status === 'WARNING');
    const status = failures.length ? 'FAIL' : warnings.length ? 'warn' : 'pass';
    // A clampd denial is an isError CallToolResult whose text starts "[clampd] Tool call".
    const blocked = JSON.stringify(checks).includes('[clampd] Tool call');
    res.set(m[1], { status, failures, warnings, blocked });
  }
  return res;
}

// Scenario order: as `conformance list --server` prints them, then anything else seen.
const scenarios = [];
try {
  for (const line of fs.readFileSync(path.join(out, 'scenarios.txt'), 'utf8').split('\n')) {
    const m = /^\s+-\s+(\S+)/.exec(line);
    if (m) scenarios.push(m[1]);
  }
} catch {
  /* fall back to what the runs produced */
}

const runs = {};
for (const s of SERVERS) {
  runs[s.key] = {
    direct: loadRun(path.join(out, `${s.key}-direct`)),
    clampd: loadRun(path.join(out, `${s.key}-clampd`)), // null: configuration not run
  };
  for (const r of [runs[s.key].direct, runs[s.key].clampd]) {
    if (!r) continue;
    for (const k of r.keys()) if (!scenarios.includes(k)) scenarios.push(k);
  }
}
if (process.env.CONFORMANCE_SCENARIO) {
  scenarios.splice(0, scenarios.length, process.env.CONFORMANCE_SCENARIO);
}

const get = (run, sc) => (run ? run.get(sc) ?? { status: 'missing', failures: [], warnings: [] } : null);

let passed = 0;
let failed = 0;
let notCounted = 0;
const problems = [];
const rows = [];
for (const sc of scenarios) {
  const row = [sc];
  for (const s of SERVERS) {
    const d = get(runs[s.key].direct, sc);
    const v = get(runs[s.key].clampd, sc);
    row.push(d.status, v ? v.status : '-');
    const directOk = RANK[d.status] >= 1;
    if (!directOk) {
      if (s.strict) {
        failed++;
        problems.push({ server: s.label, sc, what: 'fails directly (fixture bug)', r: d });
      } else {
        notCounted++;
      }
      continue;
    }
    if (!v) {
      passed++;
      continue;
    }
    if (RANK[v.status] >= RANK[d.status]) {
      passed++;
    } else {
      failed++;
      problems.push({ server: s.label, sc, what: `${d.status} directly, ${v.status} through clampd`, r: v });
    }
  }
  rows.push(row);
}

const header = ['scenario', 'fixture direct', 'via clampd', 'everything direct', 'via clampd'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const fmt = (r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
console.log(fmt(header));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const r of rows) console.log(fmt(r));
console.log('');
console.log('pass: no failed/warning checks; warn: only SHOULD-level warnings; FAIL: failed checks; -: not run');

if (problems.length) {
  console.log('');
  console.log('Problems:');
  for (const p of problems) {
    console.log(`  ${p.server} / ${p.sc}: ${p.what}`);
    for (const c of [...p.r.failures, ...p.r.warnings].slice(0, 4)) {
      const msg = (c.errorMessage ?? c.description ?? '').replace(/\s+/g, ' ').slice(0, 300);
      console.log(`    ${c.status} ${c.id}: ${msg}`);
    }
  }
}
// Scenarios the suite passed although the tool call was answered by a clampd denial
// (its checks only look for some text, or for isError): not counted as failures, but
// the scenario did not exercise the server through clampd.
const blockedPasses = [];
for (const s of SERVERS) {
  const v = runs[s.key].clampd;
  if (!v) continue;
  for (const [sc, r] of v) if (r.blocked && r.status !== 'FAIL') blockedPasses.push(`${s.label} / ${sc}`);
}
if (blockedPasses.length) {
  console.log('');
  console.log('Passed through clampd, but the tool call was answered by a clampd denial:');
  for (const b of blockedPasses) console.log(`  ${b}`);
}

// clampd's own account of what it denied (from its stderr, captured by supergateway with -v).
for (const s of SERVERS) {
  const log = path.join(out, `${s.key}-clampd`, 'supergateway.log');
  if (!fs.existsSync(log)) continue;
  const denials = new Map();
  for (const m of fs.readFileSync(log, 'utf8').matchAll(/denied tools\/call '([^']*)' \[[0-9a-f]*\]: ([a-z_]+)/g)) {
    const k = m[2];
    if (!denials.has(k)) denials.set(k, new Set());
    denials.get(k).add(m[1]);
  }
  if (denials.size) {
    console.log('');
    console.log(`clampd denials logged for ${s.label}:`);
    for (const [code, tools] of denials) console.log(`  ${code}: ${[...tools].join(', ')}`);
  }
}

if (notCounted) {
  console.log('');
  console.log(`(${notCounted} server-everything scenario(s) fail directly and are not counted)`);
}
console.log(`conformance: ${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);

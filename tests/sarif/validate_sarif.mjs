#!/usr/bin/env node
// Validates SARIF logs as GitHub code scanning would take them:
//   1. against the official SARIF 2.1.0 JSON schema (shipped as sarif-2.1.0.json by the pinned npm
//      package @microsoft/sarif-multitool-linux), with Ajv and ajv-formats;
//   2. with the checks code scanning makes that the schema does not: every result's ruleId is
//      defined in tool.driver.rules (and ruleIndex points at it), a level is set (error, warning or
//      note), a location exists, a physical location's uri is relative (no scheme, no leading '/',
//      no '..' segment, no backslash) and its region starts at line >= 1, partialFingerprints are
//      present, rule ids are unique, security-severity is a number in 0..10, at most 25,000 results
//      per run and 20 runs per file.
// Usage: node validate_sarif.mjs FILE...   exit 0 when every file is valid, 1 otherwise.
//        node validate_sarif.mjs --self-test   a valid log passes and each broken copy is refused.
// Install the pinned packages first: npm ci --prefix tests/sarif (scripts/bootstrap.sh does).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const schemaPath = path.join(here, 'node_modules', '@microsoft', 'sarif-multitool-linux', 'sarif-2.1.0.json');

const MAX_RESULTS = 25000;
const MAX_RUNS = 20;
const LEVELS = new Set(['error', 'warning', 'note']);

function loadModule(name) {
  const m = require(name);
  return m.default ?? m;
}

// The Ajv class matching the schema's draft.
function makeValidator() {
  const schema = JSON.parse(readFileSync(schemaPath, 'utf8'));
  const draft = String(schema.$schema ?? '');
  let Ajv;
  if (draft.includes('draft-04')) Ajv = loadModule('ajv-draft-04');
  else if (draft.includes('2020-12')) Ajv = loadModule('ajv/dist/2020');
  else if (draft.includes('2019-09')) Ajv = loadModule('ajv/dist/2019');
  else Ajv = loadModule('ajv');
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: true });
  loadModule('ajv-formats')(ajv);
  return ajv.compile(schema);
}

// Code scanning's rules beyond the schema; returns a list of problems.
function codeScanningProblems(log) {
  const problems = [];
  if (log?.version !== '2.1.0') problems.push(`version is ${JSON.stringify(log?.version)}, not "2.1.0"`);
  const runs = Array.isArray(log?.runs) ? log.runs : [];
  if (runs.length === 0) problems.push('no runs');
  if (runs.length > MAX_RUNS) problems.push(`${runs.length} runs (code scanning takes at most ${MAX_RUNS})`);
  runs.forEach((run, r) => {
    const rules = run?.tool?.driver?.rules ?? [];
    const ids = new Map();
    rules.forEach((rule, i) => {
      if (typeof rule?.id !== 'string' || rule.id === '') problems.push(`runs[${r}].tool.driver.rules[${i}]: no id`);
      else if (ids.has(rule.id)) problems.push(`runs[${r}].tool.driver.rules[${i}]: duplicate id ${rule.id}`);
      else ids.set(rule.id, i);
      const sev = rule?.properties?.['security-severity'];
      if (sev !== undefined) {
        const n = Number(sev);
        if (typeof sev !== 'string' || !Number.isFinite(n) || n < 0 || n > 10) {
          problems.push(`runs[${r}].tool.driver.rules[${i}]: security-severity ${JSON.stringify(sev)} is not "0.0".."10.0"`);
        }
      }
    });
    const results = Array.isArray(run?.results) ? run.results : [];
    if (results.length > MAX_RESULTS) {
      problems.push(`runs[${r}]: ${results.length} results (code scanning takes at most ${MAX_RESULTS})`);
    }
    results.forEach((res, i) => {
      const at = `runs[${r}].results[${i}]`;
      if (typeof res?.ruleId !== 'string' || res.ruleId === '') {
        problems.push(`${at}: no ruleId`);
      } else if (!ids.has(res.ruleId)) {
        problems.push(`${at}: ruleId ${res.ruleId} is not defined in tool.driver.rules`);
      } else if (res.ruleIndex !== undefined && res.ruleIndex !== ids.get(res.ruleId)) {
        problems.push(`${at}: ruleIndex ${res.ruleIndex} is not the index of ${res.ruleId} (${ids.get(res.ruleId)})`);
      }
      if (!LEVELS.has(res?.level)) problems.push(`${at}: level ${JSON.stringify(res?.level)} is not error, warning or note`);
      if (typeof res?.message?.text !== 'string' || res.message.text === '') problems.push(`${at}: no message.text`);
      const fp = res?.partialFingerprints;
      if (!fp || typeof fp !== 'object' || Object.keys(fp).length === 0) problems.push(`${at}: no partialFingerprints`);
      const locations = Array.isArray(res?.locations) ? res.locations : [];
      if (locations.length === 0) problems.push(`${at}: no location`);
      locations.forEach((loc, j) => {
        const lat = `${at}.locations[${j}]`;
        const phys = loc?.physicalLocation;
        if (!phys) {
          if (!Array.isArray(loc?.logicalLocations) || loc.logicalLocations.length === 0) {
            problems.push(`${lat}: neither a physical nor a logical location`);
          }
          return;
        }
        const uri = phys?.artifactLocation?.uri;
        if (typeof uri !== 'string' || uri === '') {
          problems.push(`${lat}: physicalLocation without artifactLocation.uri`);
        } else {
          if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(uri)) problems.push(`${lat}: uri ${uri} is absolute (has a scheme)`);
          if (uri.startsWith('/')) problems.push(`${lat}: uri ${uri} is absolute (starts with '/')`);
          if (uri.includes('\\')) problems.push(`${lat}: uri ${uri} has a backslash (use '/')`);
          let decoded = uri;
          try {
            decoded = decodeURIComponent(uri);
          } catch {
            problems.push(`${lat}: uri ${uri} is not percent-encoded UTF-8`);
          }
          if (uri.split('/').includes('..') || decoded.split('/').includes('..')) {
            problems.push(`${lat}: uri ${uri} leaves the source root ('..')`);
          }
        }
        const region = phys.region;
        if (region !== undefined && !(Number.isInteger(region?.startLine) && region.startLine >= 1)) {
          problems.push(`${lat}: region.startLine ${JSON.stringify(region?.startLine)} (must be >= 1)`);
        }
      });
    });
  });
  return problems;
}

// Schema errors and code-scanning problems of one parsed log.
function problemsOf(validate, log) {
  const out = [];
  if (!validate(log)) {
    for (const e of validate.errors ?? []) out.push(`schema: ${e.instancePath || '/'} ${e.message}`);
  }
  return out.concat(codeScanningProblems(log));
}

function validateFile(validate, file) {
  let log;
  try {
    log = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    return [`not JSON: ${e.message}`];
  }
  return problemsOf(validate, log);
}

// A minimal valid log, then copies broken one way each: each must be refused.
function selfTest(validate) {
  const good = () => ({
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: 'phigate',
            semanticVersion: '0.1.0',
            rules: [
              {
                id: 'TX001',
                name: 'Sample',
                shortDescription: { text: 'sample' },
                defaultConfiguration: { level: 'error' },
                properties: { 'security-severity': '9.0' },
              },
            ],
          },
        },
        results: [
          {
            ruleId: 'TX001',
            ruleIndex: 0,
            level: 'error',
            message: { text: 'sample' },
            locations: [
              {
                physicalLocation: { artifactLocation: { uri: 'a/b%20c.yaml', uriBaseId: '%SRCROOT%' }, region: { startLine: 3 } },
              },
            ],
            partialFingerprints: { 'phigateFinding/v1': 'ab' },
          },
          {
            ruleId: 'TX001',
            level: 'note',
            message: { text: 'no file' },
            locations: [{ logicalLocations: [{ fullyQualifiedName: 'Ingress a/b', kind: 'resource' }] }],
            partialFingerprints: { 'phigateFinding/v1': 'cd' },
          },
        ],
      },
    ],
  });
  const res = (log) => log.runs[0].results[0];
  const phys = (log) => res(log).locations[0].physicalLocation;
  const broken = {
    'ruleId missing from driver.rules': (l) => { res(l).ruleId = 'NOPE'; delete res(l).ruleIndex; },
    'ruleId absent': (l) => { delete res(l).ruleId; delete res(l).ruleIndex; },
    'ruleIndex pointing elsewhere': (l) => { res(l).ruleIndex = 5; },
    'absolute uri (leading /)': (l) => { phys(l).artifactLocation.uri = '/etc/phigate/phigate.yaml'; },
    'absolute uri (file scheme)': (l) => { phys(l).artifactLocation.uri = 'file:///etc/phigate/phigate.yaml'; },
    "uri leaving the root ('..')": (l) => { phys(l).artifactLocation.uri = '../etc/passwd'; },
    "uri leaving the root (encoded '..')": (l) => { phys(l).artifactLocation.uri = '%2e%2e/etc/passwd'; },
    'region startLine 0': (l) => { phys(l).region.startLine = 0; },
    'wrong level': (l) => { res(l).level = 'fatal'; },
    'level none': (l) => { res(l).level = 'none'; },
    'no level': (l) => { delete res(l).level; },
    'no partialFingerprints': (l) => { delete res(l).partialFingerprints; },
    'no location': (l) => { res(l).locations = []; },
    'empty location': (l) => { res(l).locations = [{}]; },
    'duplicate rule id': (l) => { l.runs[0].tool.driver.rules.push({ id: 'TX001' }); },
    'security-severity not a number': (l) => { l.runs[0].tool.driver.rules[0].properties['security-severity'] = 'high'; },
    'wrong version (schema)': (l) => { l.version = '2.0.0'; },
    'unknown property (schema)': (l) => { res(l).bogus = 1; },
    'too many results': (l) => { l.runs[0].results = Array(MAX_RESULTS + 1).fill(res(l)); },
  };
  let failed = 0;
  const ok = problemsOf(validate, good());
  if (ok.length) {
    failed++;
    console.error(`self-test: the valid log was refused:\n  ${ok.join('\n  ')}`);
  }
  for (const [what, breakIt] of Object.entries(broken)) {
    const log = good();
    breakIt(log);
    const p = problemsOf(validate, log);
    if (p.length === 0) {
      failed++;
      console.error(`self-test: a log with ${what} was accepted`);
    } else {
      console.log(`self-test: refused (${what}): ${p[0]}`);
    }
  }
  console.log(`self-test: ${Object.keys(broken).length + 1 - failed} passed, ${failed} failed`);
  return failed === 0;
}

function main(args) {
  if (args.length === 0) {
    console.error('usage: node validate_sarif.mjs FILE... | --self-test');
    return 1;
  }
  let validate;
  try {
    validate = makeValidator();
  } catch (e) {
    console.error(`validate_sarif: cannot load the SARIF schema ${schemaPath}: ${e.message}`);
    console.error('validate_sarif: install the pinned packages with: npm ci --prefix tests/sarif');
    return 1;
  }
  if (args[0] === '--self-test') return selfTest(validate) ? 0 : 1;
  let bad = 0;
  for (const file of args) {
    const problems = validateFile(validate, file);
    if (problems.length) {
      bad++;
      console.error(`${file}: INVALID (${problems.length} problem${problems.length === 1 ? '' : 's'})`);
      for (const p of problems.slice(0, 50)) console.error(`  ${p}`);
    } else {
      console.log(`${file}: valid SARIF 2.1.0 for code scanning`);
    }
  }
  return bad ? 1 : 0;
}

process.exitCode = main(process.argv.slice(2));

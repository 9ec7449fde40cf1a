#!/usr/bin/env node
// Compile solidity/*.sol with the pinned solc-js and write artifacts/<Contract>.json.
//
//   npm run compile          regenerate artifacts/
//   npm run check            compile in memory, exit 1 if artifacts/ differ (byte for byte)
//
// Each artifact records `inputsHash`: sha256 over the compiler inputs (this script,
// package.json, package-lock.json and every solidity/*.sol, in sorted order, each as
// `path \0 content \0`). The Rust crate recomputes it in a test, so a source edited without
// recompiling fails `cargo test` even where node is not installed.
'use strict';

const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const solc = require('solc');

const ROOT = path.resolve(__dirname, '..');
const SOL_DIR = 'solidity';
const OUT_DIR = path.join(ROOT, 'artifacts');
const CONTRACTS = ['SmartnodesCore', 'SmartnodesToken'];
const EXPECTED_SOLC = '0.8.37';

const SETTINGS = {
  evmVersion: 'cancun',
  optimizer: { enabled: true, runs: 200 },
  viaIR: false,
  // No metadata hash in the bytecode: artifacts depend only on the code, not on comments
  // or file paths.
  metadata: { bytecodeHash: 'none', appendCBOR: false },
  outputSelection: {
    '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] },
  },
};

function inputFiles() {
  const sol = fs
    .readdirSync(path.join(ROOT, SOL_DIR))
    .filter((f) => f.endsWith('.sol'))
    .map((f) => `${SOL_DIR}/${f}`);
  return ['package-lock.json', 'package.json', 'scripts/compile.js', ...sol].sort();
}

function inputsHash() {
  const h = crypto.createHash('sha256');
  for (const rel of inputFiles()) {
    h.update(rel);
    h.update(Buffer.from([0]));
    h.update(fs.readFileSync(path.join(ROOT, rel)));
    h.update(Buffer.from([0]));
  }
  return h.digest('hex');
}

function findImports(importPath) {
  const candidates = [path.join(ROOT, 'node_modules', importPath), path.join(ROOT, importPath)];
  for (const c of candidates) {
    if (fs.existsSync(c)) return { contents: fs.readFileSync(c, 'utf8') };
  }
  return { error: `import not found: ${importPath}` };
}

function compile() {
  const version = solc.version();
  if (!version.startsWith(`${EXPECTED_SOLC}+`)) {
    throw new Error(`solc ${EXPECTED_SOLC} expected, found ${version}: run npm ci`);
  }
  const sources = {};
  for (const rel of inputFiles().filter((f) => f.endsWith('.sol'))) {
    sources[rel] = { content: fs.readFileSync(path.join(ROOT, rel), 'utf8') };
  }
  const input = { language: 'Solidity', sources, settings: SETTINGS };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
  const errors = (output.errors || []).filter((e) => e.severity === 'error');
  for (const e of output.errors || []) process.stderr.write(`${e.formattedMessage}\n`);
  if (errors.length) throw new Error(`${errors.length} compile error(s)`);

  const hash = inputsHash();
  const artifacts = {};
  for (const name of CONTRACTS) {
    const sourceName = `${SOL_DIR}/${name}.sol`;
    const c = output.contracts[sourceName][name];
    const runtime = c.evm.deployedBytecode.object;
    const artifact = {
      contractName: name,
      sourceName,
      compiler: { solc: version, settings: { ...SETTINGS, outputSelection: undefined } },
      inputsHash: hash,
      deployedSize: runtime.length / 2,
      abi: c.abi,
      bytecode: `0x${c.evm.bytecode.object}`,
      deployedBytecode: `0x${runtime}`,
    };
    artifacts[`${name}.json`] = `${JSON.stringify(artifact, null, 2)}\n`;
    if (runtime.length / 2 > 24576) {
      throw new Error(`${name} runtime code is ${runtime.length / 2} bytes, over the 24,576-byte limit`);
    }
  }
  return artifacts;
}

function main() {
  const check = process.argv.includes('--check');
  const artifacts = compile();
  let drift = 0;
  for (const [file, text] of Object.entries(artifacts)) {
    const dest = path.join(OUT_DIR, file);
    if (check) {
      const current = fs.existsSync(dest) ? fs.readFileSync(dest, 'utf8') : null;
      if (current !== text) {
        process.stderr.write(`artifacts/${file} differs from a fresh compile: run npm run compile\n`);
        drift += 1;
      }
    } else {
      fs.mkdirSync(OUT_DIR, { recursive: true });
      fs.writeFileSync(dest, text);
      const size = JSON.parse(text).deployedSize;
      process.stdout.write(`wrote artifacts/${file} (runtime ${size} bytes)\n`);
    }
  }
  if (drift) process.exit(1);
  if (check) process.stdout.write('artifacts match a fresh compile\n');
}

try {
  main();
} catch (e) {
  process.stderr.write(`${e.message}\n`);
  process.exit(1);
}

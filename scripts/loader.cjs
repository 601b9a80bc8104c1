#!/usr/bin/env node
'use strict';
// Loads __NAME__.bundle.cjs with the V8 code cache that the build wrote next
// to it, so that a command does not parse and compile the CLI from scratch.
// A cache that does not match this Node is ignored by V8 (then we compile).
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const { wrap } = require('node:module');

const file = path.join(__dirname, '__NAME__.bundle.cjs');
let cachedData;
try {
  cachedData = fs.readFileSync(`${file}.cache`);
} catch {
  /* no cache: compile */
}
const script = new vm.Script(wrap(fs.readFileSync(file, 'utf8')), { filename: file, cachedData });
if (process.env.TSRUNC_BUILD_CODE_CACHE) {
  process.once('exit', () => fs.writeFileSync(`${file}.cache`, script.createCachedData()));
}
script.runInThisContext()(exports, require, module, file, __dirname);

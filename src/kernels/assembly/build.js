// Compiles the AssemblyScript kernels in this folder to wasm/<name>.wasm at the package root, the
// one place both the compiled package (dist/) and the jest tests (which run the TypeScript sources
// without building) load them from (src/kernels/wasm_module.ts). Run by `npm run build` and
// `prepare` (so `npm ci` builds them), and by jest's globalSetup, which compiles only when a
// module is missing or older than the sources. Each file is written to a temporary name and
// renamed into place, so a reader never sees half a module.
//
//   node src/kernels/assembly/build.js            compile every module
//   node src/kernels/assembly/build.js --stale    compile only missing or stale ones
'use strict';
const fs = require('fs');
const path = require('path');

const ROOT = path.resolve(__dirname, '..', '..', '..');
const SRC = __dirname;
const OUT = path.join(ROOT, 'wasm');

// Options every module shares: the stub runtime (nothing here allocates) and no abort import.
const COMMON = ['-O3', '--runtime', 'stub', '--enable', 'simd', '--noAssert', '--use', 'abort='];

/**
 * The modules: entry files (their exports together), and how the module gets its memory. One
 * compile per module (each parses AssemblyScript's standard library again: ~1 s).
 */
const MODULES = [
  // Owns its memory: 5 pages hold the normal table, the lane state, biases and first pieces.
  { name: 'crossbar_read', entries: ['crossbar_read.ts'], flags: ['--initialMemory', '5'] },
  // Works on the tfjs wasm backend's own heap: imports it as env.memory.
  { name: 'heap_kernels', entries: ['conv.ts', 'channels.ts', 'optimizer.ts', 'quantize.ts', 'crossbar_planes.ts', 'crossbar_bitserial.ts'], flags: ['--importMemory', '--noExportMemory'] },
];

function sources() {
  return fs
    .readdirSync(SRC)
    .filter((f) => f.endsWith('.ts') || f === 'build.js')
    .map((f) => path.join(SRC, f));
}

function isStale(out) {
  if (!fs.existsSync(out)) return true;
  const built = fs.statSync(out).mtimeMs;
  return sources().some((f) => fs.statSync(f).mtimeMs > built);
}

/**
 * The ids of the sections of a wasm binary. A module that works on memory it does not own must
 * not carry data segments (they would overwrite the owner's bytes at instantiation).
 */
function sectionIds(bytes, file) {
  if (bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) throw new Error(`${file}: not a WebAssembly module`);
  const ids = [];
  let p = 8;
  while (p < bytes.length) {
    const id = bytes[p++];
    let size = 0;
    let shift = 0;
    for (;;) {
      const b = bytes[p++];
      size += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if (!(b & 0x80)) break;
    }
    ids.push(id);
    p += size;
  }
  return ids;
}

async function compile(mod) {
  const { default: asc } = await import('assemblyscript/asc');
  const outFile = path.join(OUT, `${mod.name}.wasm`);
  let binary = null;
  let errors = '';
  const result = await asc.main([...mod.entries.map((e) => path.join(SRC, e)), '-o', outFile, ...COMMON, ...mod.flags], {
    writeFile: (name, contents) => {
      if (name.endsWith('.wasm')) binary = contents;
    },
    stderr: { write: (s) => (errors += s) },
  });
  const names = mod.entries.map((e) => path.relative(ROOT, path.join(SRC, e))).join(', ');
  if (result.error || !binary) throw new Error(`asc failed on ${names}:\n${errors}${result.error ? result.error.message : ''}`);
  if (sectionIds(binary, outFile).includes(11)) throw new Error(`${names} compiled with data segments; the kernels must not use static data`);
  fs.mkdirSync(OUT, { recursive: true });
  const tmp = `${outFile}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, binary);
  fs.renameSync(tmp, outFile);
  return outFile;
}

async function build({ staleOnly = false, quiet = false } = {}) {
  const t0 = Date.now();
  const todo = MODULES.filter((m) => !staleOnly || isStale(path.join(OUT, `${m.name}.wasm`)));
  for (const m of todo) await compile(m);
  if (!quiet && todo.length) process.stderr.write(`asc: ${todo.map((m) => `wasm/${m.name}.wasm`).join(', ')} in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  return todo.map((m) => m.name);
}

module.exports = { build, MODULES, OUT };

if (require.main === module) {
  build({ staleOnly: process.argv.includes('--stale') }).catch((e) => {
    process.stderr.write(`${e.message}\n`);
    process.exit(1);
  });
}

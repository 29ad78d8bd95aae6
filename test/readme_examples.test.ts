// The README's examples run as written: every fenced block marked ```sh example is run by bash,
// in order, in one empty folder, with `npx memristor-tfjs` the built CLI (bin/memristor-tfjs.js,
// dist/ built by `npm ci`; rebuilt here when a source file is newer) and
// `require('memristor-tfjs')` the package.
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { tempRoot } from './helpers';

const repo = path.resolve(__dirname, '..');
const BIN = path.join(repo, 'bin', 'memristor-tfjs.js');

/** The fenced blocks of `markdown` whose info string is `sh example` (or `bash example`). */
export function exampleBlocks(markdown: string): { line: number; code: string }[] {
  const blocks: { line: number; code: string }[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (!/^```(sh|bash)\s+example\s*$/.test(lines[i])) continue;
    const start = i + 1;
    let j = start;
    while (j < lines.length && !/^```\s*$/.test(lines[j])) j++;
    if (j === lines.length) throw new Error(`README.md:${i + 1}: an example block is not closed`);
    blocks.push({ line: i + 1, code: lines.slice(start, j).join('\n') });
    i = j;
  }
  return blocks;
}

/** The first source file newer than the dist/ build of it, or null. */
function staleBuild(): string | null {
  for (const dir of ['src', 'layers', 'models', 'training']) {
    const walk = (d: string): string | null => {
      for (const e of fs.readdirSync(path.join(repo, d), { withFileTypes: true })) {
        const rel = path.join(d, e.name);
        if (e.isDirectory()) {
          const r = walk(rel);
          if (r) return r;
        } else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) {
          const js = path.join(repo, 'dist', rel.replace(/\.ts$/, '.js'));
          if (!fs.existsSync(js) || fs.statSync(js).mtimeMs < fs.statSync(path.join(repo, rel)).mtimeMs) return rel;
        }
      }
      return null;
    };
    const r = walk(dir);
    if (r) return r;
  }
  return null;
}

const readme = fs.readFileSync(path.join(repo, 'README.md'), 'utf8');
const root = tempRoot('readme');

test('the README marks its runnable blocks, and the parser finds each whole', () => {
  const blocks = exampleBlocks(readme);
  expect(blocks.length).toBeGreaterThanOrEqual(5);
  expect(exampleBlocks('a\n```sh example\necho 1\necho 2\n```\n```sh\nnot this\n```\n')).toEqual([{ line: 2, code: 'echo 1\necho 2' }]);
  expect(() => exampleBlocks('```sh example\necho\n')).toThrow(/not closed/);
});

test('the README examples run as written, in order, in an empty folder', () => {
  // the examples run the built package: build it where a source is newer (npm ci builds it in CI)
  const stale = staleBuild();
  if (stale) {
    const b = spawnSync(process.execPath, [path.join(repo, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], { cwd: repo, encoding: 'utf8', timeout: 120000 });
    if (b.status !== 0) throw new Error(`dist/ is older than ${stale} and \`npm run build\` failed:\n${b.stdout}${b.stderr}`);
  }
  const dir = root;
  // the package as `npm install memristor-tfjs` would place it
  fs.mkdirSync(path.join(dir, 'node_modules'));
  fs.symlinkSync(repo, path.join(dir, 'node_modules', 'memristor-tfjs'), 'dir');
  const prelude = [
    'set -euo pipefail',
    `npx() { if [ "$1" = memristor-tfjs ]; then shift; node ${JSON.stringify(BIN)} "$@"; else command npx "$@"; fi; }`,
  ].join('\n');
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  delete env.MEMRISTOR_TFJS_BACKEND;
  for (const b of exampleBlocks(readme)) {
    const r = spawnSync('bash', ['-c', `${prelude}\n${b.code}\n`], { cwd: dir, env, encoding: 'utf8', timeout: 60000, maxBuffer: 64 << 20 });
    if (r.status !== 0) {
      throw new Error(`README.md:${b.line}: the example exited with ${r.status ?? r.signal}\n${b.code}\n--- stderr (end) ---\n${(r.stderr ?? '').slice(-3000)}`);
    }
  }
  // what the examples say they write
  for (const f of ['pulses.csv', 'my_device.json', 'my_device.fit.json', 'my_device.fit.html', 'my_model/model.json', 'my_crossbar/manifest.json', 'my_tuned/insitu.json', 'my_tuned/report.html']) {
    expect([f, fs.existsSync(path.join(dir, f))]).toEqual([f, true]);
  }
}, 200000);

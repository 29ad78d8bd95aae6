// The package's version, from its package.json (found upwards: src/ when run from source under
// jest, dist/src/ when compiled).
import * as fs from 'fs';
import * as path from 'path';

export function packageVersion(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const f = path.join(dir, 'package.json');
    if (fs.existsSync(f)) {
      const p = JSON.parse(fs.readFileSync(f, 'utf8'));
      if (p.name === 'memristor-tfjs') return p.version;
    }
    if (path.dirname(dir) === dir) return 'unknown';
  }
}

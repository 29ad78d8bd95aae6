// The compiled AssemblyScript kernel modules (src/kernels/assembly -> wasm/, src/kernels/wasm_module.ts).
import * as fs from 'fs';
import * as path from 'path';
import { kernelModulePath, loadKernelModule } from '../src/kernels/wasm_module';

describe('AssemblyScript kernel modules', () => {
  test('wasm/crossbar_read.wasm is built and exports its kernels and memory', () => {
    const file = kernelModulePath('crossbar_read');
    expect(path.relative(path.join(__dirname, '..'), file)).toBe(path.join('wasm', 'crossbar_read.wasm'));
    const exports = loadKernelModule('crossbar_read');
    expect(exports).not.toBeNull();
    expect(Object.keys(exports!).sort()).toEqual(['dac', 'memory', 'run']);
  });

  test('a missing module is an error naming the file and the build command', () => {
    expect(() => loadKernelModule('no_such_kernel')).toThrow(/no_such_kernel\.wasm cannot be read .*npm run build/);
  });

  test('a file that is not WebAssembly is an error naming it', () => {
    const file = kernelModulePath('not_wasm_test');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, 'hello');
    try {
      expect(() => loadKernelModule('not_wasm_test')).toThrow(/not_wasm_test\.wasm is not a WebAssembly module/);
    } finally {
      fs.unlinkSync(file);
    }
  });

  test('the package ships the compiled modules', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8'));
    expect(pkg.files).toContain('wasm');
    expect(pkg.devDependencies.assemblyscript).toMatch(/^0\.28\.\d+$/);
  });
});

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

  test('wasm/heap_kernels.wasm imports the backend heap (env.memory), exports no memory and carries no data', () => {
    const bytes = fs.readFileSync(kernelModulePath('heap_kernels'));
    const wa = (globalThis as unknown as { WebAssembly: { Module: { new (b: Uint8Array): object; imports(m: object): { module: string; name: string; kind: string }[]; exports(m: object): { name: string; kind: string }[] } } }).WebAssembly;
    const mod = new wa.Module(bytes);
    expect(wa.Module.imports(mod)).toEqual([{ module: 'env', name: 'memory', kind: 'memory' }]);
    expect(wa.Module.exports(mod).map((e) => `${e.name}:${e.kind}`).sort()).toEqual(
      ['adamUpdate', 'biasActivation', 'bitSerialReads', 'columnSums', 'conv2d', 'conv2dFilterGrad', 'depthwise', 'depthwiseFilterGrad', 'maxAbs', 'maxPoolGrad', 'normalize', 'pad', 'planeReads', 'rowBroadcast', 'uniformLevels'].map((n) => `${n}:function`),
    );
    // Sections after the 8-byte header: id, LEB128 size, body. No data section (id 11): it would
    // overwrite the backend's heap at instantiation.
    const ids: number[] = [];
    for (let p = 8; p < bytes.length; ) {
      ids.push(bytes[p++]);
      let size = 0;
      for (let shift = 0; ; shift += 7) {
        const b = bytes[p++];
        size += (b & 0x7f) * 2 ** shift;
        if (!(b & 0x80)) break;
      }
      p += size;
    }
    expect(ids).not.toContain(11);
    expect(ids).toContain(10);
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

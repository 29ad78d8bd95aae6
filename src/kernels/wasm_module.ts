// Loads a compiled AssemblyScript kernel module, wasm/<name>.wasm at the package root (built from
// src/kernels/assembly/ by its build.js: `npm run build`, `npm ci`, or jest's globalSetup).
// The same folder serves the compiled package (dist/src/kernels/ -> ../../../wasm) and the
// TypeScript sources under jest (src/kernels/ -> ../../wasm).
import * as fs from 'fs';
import * as path from 'path';

/** The parts of the WebAssembly global used here (lib ES2022 has no declarations of it). */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}

function wasmApi(): WasmApi | undefined {
  return (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;
}

/** The path of wasm/<name>.wasm, whichever of the two layouts this file runs from. */
export function kernelModulePath(name: string): string {
  const candidates = [path.join(__dirname, '..', '..', 'wasm'), path.join(__dirname, '..', '..', '..', 'wasm')].map((d) => path.join(d, `${name}.wasm`));
  return candidates.find((f) => fs.existsSync(f)) ?? candidates[0];
}

/**
 * Instantiates wasm/<name>.wasm with `imports`; null where this runtime has no WebAssembly or
 * does not support the module's instructions (SIMD). A missing or damaged file is an error
 * naming it and the fix.
 */
export function loadKernelModule(name: string, imports: object = {}): Record<string, unknown> | null {
  const wa = wasmApi();
  if (!wa) return null;
  const file = kernelModulePath(name);
  let bytes: Uint8Array;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new Error(`the kernel module ${file} cannot be read (${(e as Error).message}); build it with \`npm run build\` (it is compiled from src/kernels/assembly/)`);
  }
  if (bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
    throw new Error(`the kernel module ${file} is not a WebAssembly module; rebuild it with \`npm run build\``);
  }
  // validate() is false for a well-formed module whose instructions this engine lacks (no SIMD).
  if (!wa.validate(bytes)) return null;
  return new wa.Instance(new wa.Module(bytes), imports).exports;
}

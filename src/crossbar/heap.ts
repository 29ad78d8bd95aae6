// Tensors on the tfjs wasm backend's heap, read and written in place: the crossbar kernels
// (src/crossbar/simd.ts, src/crossbar/bit_serial.ts) take their byte offsets.
import { tf, Tensor } from '../tf';

/**
 * The values of a float32 tensor without a copy where the backend allows it (a view of the wasm
 * heap; the cpu backend's own array), else dataSync(). A wasm view is valid only until the next tf
 * operation (a heap growth detaches it): read it at once, run no tf op meanwhile.
 */
export function readView(t: Tensor): Float32Array {
  if (t.dtype === 'float32' && tf.getBackend() === 'wasm') {
    const b = tf.backend() as unknown as { dataIdMap?: { get(id: unknown): { memoryOffset?: number | null } | undefined }; wasm?: { HEAPU8?: Uint8Array } };
    const info = b.dataIdMap?.get(t.dataId);
    const heap = b.wasm?.HEAPU8;
    if (info && typeof info.memoryOffset === 'number' && heap) return new Float32Array(heap.buffer, heap.byteOffset + info.memoryOffset, t.size);
  }
  return t.dataSync() as Float32Array;
}

/**
 * A float32 tensor of `shape` on the wasm heap, its memory not initialized (the caller writes every
 * value through readView before any use), or null on another backend.
 */
export function heapTensor(shape: number[]): Tensor | null {
  if (tf.getBackend() !== 'wasm') return null;
  const b = tf.backend() as unknown as { makeOutput?: (shape: number[], dtype: 'float32') => tf.TensorInfo };
  if (typeof b.makeOutput !== 'function') return null;
  return tf.engine().makeTensorFromTensorInfo(b.makeOutput(shape, 'float32'));
}


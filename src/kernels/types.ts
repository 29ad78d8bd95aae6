// The few backend methods the kernels use, typed structurally (the backends' classes are not part
// of tfjs's public types).
import { tf } from '../tf';

export type TensorInfo = tf.TensorInfo;
export type KernelConfig = tf.KernelConfig;
export type Attrs = tf.NamedAttrMap;
export type TypedArray = Float32Array | Int32Array | Uint8Array;

/** BackendWasm: tensors live on the wasm heap. */
export interface WasmBackend {
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): TypedArray;
  disposeData(dataId: tf.DataId, force?: boolean): boolean;
  incRef(dataId: tf.DataId): void;
}

/** MathBackendCPU: tensors are typed arrays in a DataStorage. */
export interface CpuBackend {
  data: { get(dataId: tf.DataId): { values?: unknown } | undefined };
  readSync(dataId: tf.DataId): unknown;
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: Float32Array): TensorInfo;
}

/** Arguments every kernel function receives. */
export interface KernelArgs {
  inputs: tf.NamedTensorInfoMap;
  backend: {};
  attrs?: Attrs;
}

/** A kernel's input, which the engine guarantees is present for a registered kernel's own inputs. */
export function input(args: KernelArgs, name: string): TensorInfo {
  const t = args.inputs[name];
  if (t == null) throw new Error(`kernel input '${name}' is missing`);
  return t;
}

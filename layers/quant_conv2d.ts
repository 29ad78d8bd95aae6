// QuantConv2D: a 2-D convolution whose kernel and input pass through quantizers (Larq's
// QuantConv2D), with device-variation noise while training. Channels last; the float latent kernel
// [kh, kw, cin, filters] is the trainable weight.
import { tf, Tensor } from '../src/tf';
import { ConfigError } from '../src/errors';
import { Kwargs, oneInput, QuantKernelLayer, QuantLayerArgs } from './quant_base';

export type Padding = 'same' | 'valid';

export interface QuantConv2DArgs extends QuantLayerArgs {
  filters: number;
  kernelSize: number | [number, number];
  /** Default 1. */
  strides?: number | [number, number];
  /** Default 'valid' (as tf.layers). */
  padding?: Padding;
}

function pair(field: string, v: unknown): [number, number] {
  const p = typeof v === 'number' ? [v, v] : v;
  if (!Array.isArray(p) || p.length !== 2 || !p.every((n) => Number.isInteger(n) && n >= 1)) {
    throw new ConfigError(field, `must be a positive integer or a pair of them, got ${JSON.stringify(v)}`);
  }
  return [p[0], p[1]];
}

/** Output length of a convolution or pooling along one axis (null stays null). */
export function convOutputLength(n: number | null, k: number, stride: number, padding: Padding): number | null {
  if (n == null) return null;
  return padding === 'same' ? Math.ceil(n / stride) : Math.ceil((n - k + 1) / stride);
}

export class QuantConv2D extends QuantKernelLayer {
  static className = 'QuantConv2D';
  readonly filters: number;
  readonly kernelSize: [number, number];
  readonly strides: [number, number];
  readonly padding: Padding;

  constructor(args: QuantConv2DArgs) {
    super(args);
    if (!Number.isInteger(args.filters) || args.filters < 1) throw new ConfigError(`${this.name}.filters`, `must be a positive integer, got ${String(args.filters)}`);
    this.filters = args.filters;
    this.kernelSize = pair(`${this.name}.kernelSize`, args.kernelSize);
    this.strides = pair(`${this.name}.strides`, args.strides ?? 1);
    this.padding = args.padding ?? 'valid';
    if (this.padding !== 'same' && this.padding !== 'valid') throw new ConfigError(`${this.name}.padding`, `must be 'same' or 'valid', got ${String(args.padding)}`);
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    if (shape.length !== 4) throw new ConfigError(`${this.name}.input`, `expects rank-4 input [batch, h, w, c], got shape ${JSON.stringify(shape)}`);
    const cin = shape[3];
    if (cin == null) throw new ConfigError(`${this.name}.input`, 'the channel dimension must be known');
    this.addKernelAndBias([this.kernelSize[0], this.kernelSize[1], cin, this.filters], this.filters);
    this.built = true;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    return [
      s[0],
      convOutputLength(s[1], this.kernelSize[0], this.strides[0], this.padding),
      convOutputLength(s[2], this.kernelSize[1], this.strides[1], this.padding),
      this.filters,
    ];
  }

  override call(inputs: Tensor | Tensor[], kwargs: Kwargs): Tensor {
    return tf.tidy(() => {
      const x = this.quantizeInput(oneInput(inputs)) as tf.Tensor4D;
      const k = this.computeKernel(kwargs?.training === true) as tf.Tensor4D;
      const y = tf.conv2d(x, k, this.strides, this.padding);
      return this.finish(y);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      filters: this.filters,
      kernelSize: [...this.kernelSize],
      strides: [...this.strides],
      padding: this.padding,
    };
  }
}
tf.serialization.registerClass(QuantConv2D);

/** A QuantConv2D. */
export function quantConv2D(args: QuantConv2DArgs): QuantConv2D {
  return new QuantConv2D(args);
}

/** Larq's binary convolution: steSign kernel and input, kernel clipped to [-1, 1], no bias by default. */
export function binaryConv2D(args: Omit<QuantConv2DArgs, 'kernelQuantizer' | 'inputQuantizer'> & Partial<Pick<QuantConv2DArgs, 'kernelQuantizer' | 'inputQuantizer'>>): QuantConv2D {
  return new QuantConv2D({
    ...args,
    kernelQuantizer: args.kernelQuantizer === undefined ? 'steSign' : args.kernelQuantizer,
    inputQuantizer: args.inputQuantizer === undefined ? 'steSign' : args.inputQuantizer,
    kernelClip: args.kernelClip === undefined ? 1 : args.kernelClip,
    useBias: args.useBias ?? false,
  });
}

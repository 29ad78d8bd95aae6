// The one tfjs instance the whole package uses. @tensorflow/tfjs and the wasm backend share
// @tensorflow/tfjs-core, so kernels registered here are seen by every model built with `tf`.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';

export { tf };
export type Tensor = tf.Tensor;

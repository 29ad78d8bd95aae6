// Helpers shared by the test files (not a test file itself: jest matches *.test.ts only).
import { tf } from '../src/tf';

/** Save to memory and load back: the artifacts saveModel writes to disk, JSON-copied as a file would be. */
export async function roundTrip(m: tf.LayersModel): Promise<tf.LayersModel> {
  let saved: tf.io.ModelArtifacts | null = null;
  await m.save(
    tf.io.withSaveHandler(async (a) => {
      saved = { ...JSON.parse(JSON.stringify({ ...a, weightData: undefined })), weightData: a.weightData };
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  return tf.loadLayersModel(tf.io.fromMemory(saved!));
}

/** The values of a tensor as a plain array. */
export const arr = (t: tf.Tensor | tf.Tensor[]) => Array.from((t as tf.Tensor).dataSync());

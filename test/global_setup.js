// jest runs the TypeScript sources without building: compile the AssemblyScript kernels to wasm/
// first where they are missing or older than their sources (src/kernels/assembly/build.js).
const { build } = require('../src/kernels/assembly/build');

module.exports = async () => {
  await build({ staleOnly: true });
};

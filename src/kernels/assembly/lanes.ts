// AssemblyScript helpers shared by the heap kernels (imported, not exported by the module).

/** Stores the first n (>= 1) float32 lanes of v at o: all four when n >= 4, else lane by lane (the row ends there). */
// @ts-ignore: decorator
@inline
export function storeLanes(o: usize, v: v128, n: i32): void {
  if (n >= 4) v128.store(o, v);
  else {
    v128.store32_lane(o, v, 0);
    if (n > 1) v128.store32_lane(o + 4, v, 1);
    if (n > 2) v128.store32_lane(o + 8, v, 2);
  }
}

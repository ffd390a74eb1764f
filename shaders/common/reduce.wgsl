// The sum of one value per invocation over a 256-invocation workgroup, added as a fixed tree
// (the same order on every run, so partial sums are reproducible). Call it from uniform control
// flow (it holds barriers); every invocation gets the total.

var<workgroup> reduce_sums: array<f32, 256>;

fn workgroup_sum(lid: u32, value: f32) -> f32 {
    reduce_sums[lid] = value;
    workgroupBarrier();
    for (var half = 128u; half > 0u; half >>= 1u) {
        if (lid < half) {
            reduce_sums[lid] += reduce_sums[lid + half];
        }
        workgroupBarrier();
    }
    let total = reduce_sums[0];
    // Everyone has read the total before a next call overwrites the array.
    workgroupBarrier();
    return total;
}

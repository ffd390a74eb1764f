// Draws a grid of values over a rectangle of the plane as a heat map, straight from the buffer a
// kernel wrote (the density histogram, the likelihood map): one quad, and per pixel the cell it
// falls in, its value mapped to [0, 1] and looked up in the colour map (`heat_colour` in
// crates/flowplay-gpu/src/overlay.rs, uploaded as 256 entries). Values are either u32 counts
// (mode 0: the value is ln(count·norm), a log density; empty cells are transparent) or f32
// (mode 1: the value itself, e.g. log p₁). Values below `lo` fade out.
//
// Keep `Heatmap` in sync with `HeatmapUniform` in crates/flowplay-gpu/src/uniforms.rs.

struct Heatmap {
    centre: vec2<f32>,
    clip_per_world: vec2<f32>,
    // The rectangle's lower-left corner and size in world units.
    rect_min: vec2<f32>,
    rect_size: vec2<f32>,
    nx: u32,
    ny: u32,
    // 0: u32 counts scaled by `norm` and logged; 1: f32 values.
    mode: u32,
    _pad0: u32,
    // The value range mapped to the colour map's ends.
    lo: f32,
    hi: f32,
    // Counts are multiplied by this before the log (1 / (particles · cell area): a density).
    norm: f32,
    opacity: f32,
    lut: array<vec4<f32>, 256>,
}

@group(0) @binding(0) var<storage, read> values: array<u32>;
@group(0) @binding(1) var<uniform> map: Heatmap;

struct VertexOut {
    @builtin(position) clip: vec4<f32>,
    // The position in the rectangle, (0, 0) to (1, 1).
    @location(0) uv: vec2<f32>,
}

@vertex
fn vs_heat(@builtin(vertex_index) v: u32) -> VertexOut {
    var corners = array<vec2<f32>, 6>(
        vec2<f32>(0.0, 0.0), vec2<f32>(1.0, 0.0), vec2<f32>(1.0, 1.0),
        vec2<f32>(0.0, 0.0), vec2<f32>(1.0, 1.0), vec2<f32>(0.0, 1.0),
    );
    let uv = corners[v];
    let world = map.rect_min + uv * map.rect_size;
    var out: VertexOut;
    out.clip = vec4<f32>((world - map.centre) * map.clip_per_world, 0.0, 1.0);
    out.uv = uv;
    return out;
}

@fragment
fn fs_heat(in: VertexOut) -> @location(0) vec4<f32> {
    let i = min(u32(in.uv.x * f32(map.nx)), map.nx - 1u);
    let j = min(u32(in.uv.y * f32(map.ny)), map.ny - 1u);
    let raw = values[j * map.nx + i];
    var value: f32;
    if map.mode == 0u {
        if raw == 0u {
            discard;
        }
        value = log(f32(raw) * map.norm);
    } else {
        value = bitcast<f32>(raw);
    }
    // NaN and values far below the range are not drawn.
    if !(value >= map.lo - 0.5 * (map.hi - map.lo)) {
        discard;
    }
    let x = clamp((value - map.lo) / max(map.hi - map.lo, 1e-12), 0.0, 1.0);
    let fade = clamp(1.0 + 2.0 * (value - map.lo) / max(map.hi - map.lo, 1e-12), 0.0, 1.0);
    let c = map.lut[u32(round(x * 255.0))];
    let a = map.opacity * fade;
    return vec4<f32>(c.rgb * a, a);
}

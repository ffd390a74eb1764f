// The vector-field layer's arrows, straight from the velocity grid (velocity_grid's output, no
// CPU round trip): one arrow per cell, centred on the cell, its length |v|/v_max of the cell's
// size and its colour the colour map at |v|/v_max, where v_max is the grid's fastest speed (so
// the picture reads the same at any time and scale; the speed itself goes to `stats` for the
// legend). One workgroup: it first finds v_max, then writes every arrow (grids are at most a few
// thousand cells). Marks as marks_draw.wgsl draws them.

// Keep in sync with `FieldArrowsUniform` in crates/flowplay-gpu/src/uniforms.rs.
struct FieldArrows {
    nx: u32,
    ny: u32,
    _pad0: u32,
    _pad1: u32,
    // The grid's lower-left corner and cell size in world units.
    rect_min: vec2<f32>,
    cell: vec2<f32>,
    // Arrow shaft width and head length in pixels; the longest arrow's share of a cell.
    width_px: f32,
    head_px: f32,
    fill: f32,
    // Speeds below this share of v_max get no arrow (a dot-sized stub would only add noise).
    floor: f32,
    lut: array<vec4<f32>, 256>,
}

// Keep in sync with `Mark` in marks_draw.wgsl.
struct Mark {
    a: vec2<f32>,
    b: vec2<f32>,
    colour: vec4<f32>,
    width_px: f32,
    head_px: f32,
    kind: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> velocity: array<f32>;
@group(0) @binding(1) var<storage, read_write> marks: array<Mark>;
// v_max, and the mean speed.
@group(0) @binding(2) var<storage, read_write> stats: array<f32>;
@group(0) @binding(3) var<uniform> u: FieldArrows;

var<workgroup> partial_max: array<f32, 256>;
var<workgroup> partial_sum: array<f32, 256>;

fn speed(c: u32) -> f32 {
    let v = vec2<f32>(velocity[2u * c], velocity[2u * c + 1u]);
    let s = length(v);
    // A non-finite velocity (a diverged model) counts as no speed.
    return select(0.0, s, s == s && s < 3.0e38);
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
    let n = u.nx * u.ny;
    var top = 0.0;
    var sum = 0.0;
    for (var c = lid; c < n; c += 256u) {
        let s = speed(c);
        top = max(top, s);
        sum += s;
    }
    partial_max[lid] = top;
    partial_sum[lid] = sum;
    workgroupBarrier();
    for (var half = 128u; half > 0u; half /= 2u) {
        if (lid < half) {
            partial_max[lid] = max(partial_max[lid], partial_max[lid + half]);
            partial_sum[lid] += partial_sum[lid + half];
        }
        workgroupBarrier();
    }
    let v_max = partial_max[0];
    if (lid == 0u) {
        stats[0] = v_max;
        stats[1] = partial_sum[0] / f32(max(n, 1u));
    }
    let span = u.fill * min(u.cell.x, u.cell.y);
    for (var c = lid; c < n; c += 256u) {
        let i = c % u.nx;
        let j = c / u.nx;
        let centre = u.rect_min + (vec2<f32>(f32(i), f32(j)) + 0.5) * u.cell;
        let s = speed(c);
        var m: Mark;
        m.width_px = u.width_px;
        m.head_px = u.head_px;
        m.kind = 2u;
        m._pad = 0u;
        let rel = select(0.0, s / v_max, v_max > 0.0);
        if (rel < u.floor) {
            // Collapsed: the renderer draws nothing for a zero-length arrow.
            m.a = centre;
            m.b = centre;
            m.colour = vec4<f32>(0.0);
        } else {
            let dir = vec2<f32>(velocity[2u * c], velocity[2u * c + 1u]) / s;
            let half_len = 0.5 * span * rel;
            m.a = centre - dir * half_len;
            m.b = centre + dir * half_len;
            m.colour = u.lut[u32(round(rel * 255.0))];
        }
        marks[c] = m;
    }
}

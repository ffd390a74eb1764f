// Draws marks on the canvas: dots, line segments and arrows, one instance each, in world
// coordinates with their widths in pixels (so they keep their size when the view zooms). The
// marks come from a storage buffer that the CPU uploads (data points, coupling pairs, solver
// stages) or that a kernel writes (field_arrows.wgsl). Nine vertices an instance: the body's
// quad (six) and an arrow's head (three, collapsed for dots and segments). Colours are straight
// alpha in the buffer and premultiplied here, as egui blends them.
//
// Keep `MarkDraw` in sync with `MarkDrawUniform`, and `Mark` with `Mark`, in
// crates/flowplay-gpu/src/uniforms.rs and overlay.rs.

struct MarkDraw {
    // World point at the centre of the viewport.
    centre: vec2<f32>,
    // Clip-space units per world unit, x and y.
    clip_per_world: vec2<f32>,
    // Clip-space units per pixel, x and y.
    clip_per_px: vec2<f32>,
    _pad0: f32,
    _pad1: f32,
}

struct Mark {
    // A dot's centre; a segment's or arrow's start.
    a: vec2<f32>,
    // A segment's or arrow's end.
    b: vec2<f32>,
    colour: vec4<f32>,
    // A dot's radius, or a line's width, in pixels.
    width_px: f32,
    // An arrow head's length in pixels.
    head_px: f32,
    // 0 dot, 1 segment, 2 arrow.
    kind: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> marks: array<Mark>;
@group(0) @binding(1) var<uniform> draw: MarkDraw;

struct VertexOut {
    @builtin(position) clip: vec4<f32>,
    // Position within a dot's quad in (±1, ±1); (0, 0) for solid shapes.
    @location(0) local: vec2<f32>,
    @location(1) colour: vec4<f32>,
    // 1 for a dot (a disc is cut from its quad), 0 otherwise.
    @location(2) round: f32,
}

fn corner(v: u32) -> vec2<f32> {
    var corners = array<vec2<f32>, 6>(
        vec2<f32>(-1.0, -1.0), vec2<f32>(1.0, -1.0), vec2<f32>(1.0, 1.0),
        vec2<f32>(-1.0, -1.0), vec2<f32>(1.0, 1.0), vec2<f32>(-1.0, 1.0),
    );
    return corners[v % 6u];
}

fn to_clip(p: vec2<f32>) -> vec2<f32> {
    return (p - draw.centre) * draw.clip_per_world;
}

@vertex
fn vs_mark(@builtin(instance_index) i: u32, @builtin(vertex_index) v: u32) -> VertexOut {
    let m = marks[i];
    var out: VertexOut;
    out.colour = vec4<f32>(m.colour.rgb * m.colour.a, m.colour.a);
    out.local = vec2<f32>(0.0);
    out.round = 0.0;
    let a = to_clip(m.a);
    if m.kind == 0u {
        if v >= 6u {
            out.clip = vec4<f32>(2.0, 2.0, 0.0, 1.0);
            return out;
        }
        let c = corner(v);
        out.clip = vec4<f32>(a + c * m.width_px * draw.clip_per_px, 0.0, 1.0);
        out.local = c;
        out.round = 1.0;
        return out;
    }
    let b = to_clip(m.b);
    // Direction and normal measured in pixels, so widths are the same on both axes.
    let d_px = (b - a) / draw.clip_per_px;
    let len_px = length(d_px);
    if len_px < 1e-4 {
        out.clip = vec4<f32>(2.0, 2.0, 0.0, 1.0);
        return out;
    }
    let dir = d_px / len_px;
    let normal = vec2<f32>(-dir.y, dir.x);
    var head = 0.0;
    if m.kind == 2u {
        head = min(m.head_px, 0.6 * len_px);
    }
    let shaft_end = b - dir * head * draw.clip_per_px;
    if v < 6u {
        let c = corner(v);
        let along = select(a, shaft_end, c.x > 0.0);
        out.clip = vec4<f32>(along + normal * c.y * 0.5 * m.width_px * draw.clip_per_px, 0.0, 1.0);
        return out;
    }
    if m.kind != 2u {
        out.clip = vec4<f32>(2.0, 2.0, 0.0, 1.0);
        return out;
    }
    // The head: tip at b, its base across the shaft's end, as wide as it is long.
    var p = b;
    if v == 7u {
        p = shaft_end + normal * 0.5 * head * draw.clip_per_px;
    } else if v == 8u {
        p = shaft_end - normal * 0.5 * head * draw.clip_per_px;
    }
    out.clip = vec4<f32>(p, 0.0, 1.0);
    return out;
}

@fragment
fn fs_mark(in: VertexOut) -> @location(0) vec4<f32> {
    if in.round > 0.5 {
        let r = length(in.local);
        let coverage = clamp((1.0 - r) * 4.0, 0.0, 1.0);
        if coverage <= 0.0 {
            discard;
        }
        return in.colour * coverage;
    }
    return in.colour;
}

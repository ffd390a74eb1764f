// Draws the particles of a sampling run straight from the sampler's trajectory buffer (no CPU
// round trip): each particle at time t, linear between the two recorded frames around t, its
// trail from t = 0 up to t, and its predicted endpoint x̂ at the current solver step.
//
// One instance per particle; each dot and each trail segment is a quad of two triangles (six
// vertices). Colours are premultiplied by alpha, as egui blends them.
//
// Keep `Draw` in sync with `DrawUniform` in crates/flowplay-gpu/src/uniforms.rs.

struct Draw {
    // World point at the centre of the viewport.
    centre: vec2<f32>,
    // Clip-space units per world unit, x and y.
    clip_per_world: vec2<f32>,
    // Clip-space units per pixel, x and y.
    clip_per_px: vec2<f32>,
    // Dot radius and half the trail width, in pixels.
    dot_radius_px: f32,
    trail_half_width_px: f32,
    // Particles in this page, and frames recorded per particle.
    n: u32,
    frames: u32,
    // t lies in the segment between frames k and k + 1, a fraction s along it.
    k: u32,
    s: f32,
    dot_colour: vec4<f32>,
    trail_colour: vec4<f32>,
    endpoint_colour: vec4<f32>,
    // Class-conditional particles: particle i has class i mod classes and its dot takes
    // palette[class mod 8]; 0 draws every dot in dot_colour.
    classes: u32,
    // The page's first particle: instance i is particle first + i of the run.
    first: u32,
    pad1: u32,
    pad2: u32,
    palette: array<vec4<f32>, 8>,
}

// One page of particle-major trajectories: positions [n, frames] and endpoints [n, frames − 1].
@group(0) @binding(0) var<storage, read> positions: array<vec2<f32>>;
@group(0) @binding(1) var<storage, read> endpoints: array<vec2<f32>>;
@group(0) @binding(2) var<uniform> draw: Draw;

struct VertexOut {
    @builtin(position) clip: vec4<f32>,
    // Position within the quad: (±1, ±1) for dots; (along, across) for trails.
    @location(0) local: vec2<f32>,
    @location(1) colour: vec4<f32>,
}

// The corners of a quad as two triangles, in (±1, ±1).
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

// Particle i's position at the current time.
fn position_now(i: u32) -> vec2<f32> {
    let a = positions[i * draw.frames + draw.k];
    let b = positions[i * draw.frames + min(draw.k + 1u, draw.frames - 1u)];
    return mix(a, b, draw.s);
}

// A quad of radius `radius_px` around `p` (world units).
fn dot_vertex(p: vec2<f32>, v: u32, colour: vec4<f32>) -> VertexOut {
    let c = corner(v);
    var out: VertexOut;
    out.clip = vec4<f32>(to_clip(p) + c * draw.dot_radius_px * draw.clip_per_px, 0.0, 1.0);
    out.local = c;
    out.colour = colour;
    return out;
}

@vertex
fn vs_dot(@builtin(instance_index) i: u32, @builtin(vertex_index) v: u32) -> VertexOut {
    var colour = draw.dot_colour;
    if draw.classes > 0u {
        colour = draw.palette[((draw.first + i) % draw.classes) % 8u];
    }
    return dot_vertex(position_now(i), v, colour);
}

@vertex
fn vs_endpoint(@builtin(instance_index) i: u32, @builtin(vertex_index) v: u32) -> VertexOut {
    let segments = draw.frames - 1u;
    let p = endpoints[i * segments + min(draw.k, segments - 1u)];
    return dot_vertex(p, v, draw.endpoint_colour);
}

// A disc with a one-pixel soft edge.
@fragment
fn fs_dot(in: VertexOut) -> @location(0) vec4<f32> {
    let r = length(in.local);
    let edge = 1.0 / max(draw.dot_radius_px, 1.0);
    let coverage = clamp((1.0 - r) / edge, 0.0, 1.0);
    if coverage <= 0.0 {
        discard;
    }
    return in.colour * coverage;
}

// Segment j of particle i's trail, frames j → j + 1, cut at the current time; segments after it
// collapse to a point and draw nothing. Older segments fade.
@vertex
fn vs_trail(@builtin(instance_index) i: u32, @builtin(vertex_index) v: u32) -> VertexOut {
    let j = v / 6u;
    var out: VertexOut;
    out.local = vec2<f32>(0.0);
    out.colour = vec4<f32>(0.0);
    if j > draw.k || (j == draw.k && draw.s <= 0.0) {
        out.clip = vec4<f32>(2.0, 2.0, 0.0, 1.0);
        return out;
    }
    let a = to_clip(positions[i * draw.frames + j]);
    var b = to_clip(positions[i * draw.frames + j + 1u]);
    if j == draw.k {
        b = mix(a, b, draw.s);
    }
    // Perpendicular offset measured in pixels, so the width is the same on both axes.
    let d_px = (b - a) / draw.clip_per_px;
    let len_px = length(d_px);
    var normal = vec2<f32>(0.0, 1.0);
    if len_px > 1e-6 {
        normal = vec2<f32>(-d_px.y, d_px.x) / len_px;
    }
    let c = corner(v);
    let along = select(a, b, c.x > 0.0);
    let offset = normal * c.y * draw.trail_half_width_px * draw.clip_per_px;
    out.clip = vec4<f32>(along + offset, 0.0, 1.0);
    out.local = c;
    let age = f32(draw.k - j) / f32(max(draw.k + 1u, 1u));
    out.colour = draw.trail_colour * (1.0 - 0.7 * age);
    return out;
}

@fragment
fn fs_trail(in: VertexOut) -> @location(0) vec4<f32> {
    return in.colour;
}

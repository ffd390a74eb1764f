// One ODE stage's values, shared by time_branch.wgsl, ode_stage.wgsl and logp_stage.wgsl; keep in sync with
// `StageUniform` in crates/flowplay-gpu/src/uniforms.rs, which documents every field.
struct Stage {
    t: f32,
    skip: f32,
    out_scale: f32,
    next_in: f32,
    kind: u32,
    frame: u32,
    frames: u32,
    record: u32,
    w: f32,
    hp: f32,
    cfg_scale: f32,
    rpp: u32,
    ca: f32,
    cb: f32,
    cda: f32,
    cdb: f32,
    t_scale: f32,
    half: u32,
    hidden: u32,
    crows: u32,
    w1: u32,
    b1: u32,
    w3: u32,
    b3: u32,
    w0: u32,
    b0: u32,
    has_label_rows: u32,
    // The stage's tableau weight: acc += weight·k.
    weight: f32,
    // The preconditioning's input scale at t itself.
    in_scale: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

// A chunk of particles (or points) a dispatch works on. Keep in sync with `ChunkUniform` in
// crates/flowplay-gpu/src/uniforms.rs.
struct Chunk {
    // First particle and number of particles.
    p0: u32,
    len: u32,
    // Network rows per particle: 2 with guidance (conditional rows, then null-label rows).
    rpp: u32,
    // The first particle of the recording page bound to rec_pos, rec_end and rec_vel.
    rec_p0: u32,
}

// Stage.kind flags.
const KIND_FIRST: u32 = 1u;
const KIND_LAST: u32 = 2u;
const KIND_FINAL_POSITION: u32 = 4u;
const KIND_EVAL: u32 = 8u;
const KIND_HAS_NEXT: u32 = 16u;
const KIND_INIT: u32 = 32u;
// Stage.record flags.
const RECORD_POSITIONS: u32 = 1u;
const RECORD_ENDPOINTS: u32 = 2u;
const RECORD_VELOCITIES: u32 = 4u;

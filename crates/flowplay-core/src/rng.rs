//! A counter-based random number generator: Threefry-2x32 with 20 rounds (Salmon et al. 2011,
//! "Parallel random numbers: as easy as 1, 2, 3", the Random123 library).
//!
//! A counter-based generator is a keyed hash: `threefry(key, counter)` gives 64 random bits for any
//! counter, with no state to carry. That is what lets the GPU draw a training batch in parallel
//! (thread `i` of step `s` hashes the counter `(i, s)`) and still produce exactly the numbers this
//! CPU code produces, so a whole GPU run can be compared with a CPU run step by step. Threefry uses
//! only 32-bit additions, rotations and xors, all of which WGSL has.
//!
//! Conversions to floats are defined here once and must be mirrored bit for bit in WGSL:
//! [`unit_f32`] (24 random bits, `[0, 1)`), [`open_unit_f32`] (`(0, 1]`) and the Box–Muller pair
//! [`normal_pair`].

/// Rotation constants of Threefry-2x32 (Random123 `R_32x2`).
const ROTATIONS: [u32; 8] = [13, 15, 26, 6, 17, 29, 16, 24];
/// Key-schedule parity constant (Skein's `SKEIN_KS_PARITY32`).
const KS_PARITY: u32 = 0x1BD1_1BDA;

/// Threefry-2x32-20 of `counter` under `key`: 64 random bits.
#[inline]
pub fn threefry2x32(key: [u32; 2], counter: [u32; 2]) -> [u32; 2] {
    let ks = [key[0], key[1], KS_PARITY ^ key[0] ^ key[1]];
    let mut x0 = counter[0].wrapping_add(ks[0]);
    let mut x1 = counter[1].wrapping_add(ks[1]);
    for round in 0..20_u32 {
        x0 = x0.wrapping_add(x1);
        x1 = x1.rotate_left(ROTATIONS[(round % 8) as usize]);
        x1 ^= x0;
        if round % 4 == 3 {
            // Key injection after every fourth round.
            let s = round / 4 + 1;
            x0 = x0.wrapping_add(ks[(s % 3) as usize]);
            x1 = x1.wrapping_add(ks[((s + 1) % 3) as usize]).wrapping_add(s);
        }
    }
    [x0, x1]
}

/// A uniform float in `[0, 1)` from the top 24 bits of `bits` (every value exactly representable).
#[inline]
pub fn unit_f32(bits: u32) -> f32 {
    (bits >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// A uniform float in `(0, 1]`: safe to take the logarithm of.
#[inline]
pub fn open_unit_f32(bits: u32) -> f32 {
    ((bits >> 8) + 1) as f32 * (1.0 / 16_777_216.0)
}

/// Two independent standard normals from 64 random bits (Box–Muller).
#[inline]
pub fn normal_pair(bits: [u32; 2]) -> [f32; 2] {
    let radius = (-2.0 * open_unit_f32(bits[0]).ln()).sqrt();
    let angle = std::f32::consts::TAU * unit_f32(bits[1]);
    let (sin, cos) = angle.sin_cos();
    [radius * cos, radius * sin]
}

/// An index in `0..n` from 32 random bits (`bits mod n`; the bias, below `n / 2³²`, is negligible
/// for the pool sizes used here, and `%` is the same in WGSL).
#[inline]
pub fn index_below(bits: u32, n: u32) -> u32 {
    debug_assert!(n > 0, "index_below needs n > 0");
    bits % n
}

/// The key for a 64-bit seed.
#[inline]
pub fn key_from_seed(seed: u64) -> [u32; 2] {
    [seed as u32, (seed >> 32) as u32]
}

/// Counter layout for the training batch: `counter = [sample index, step · STREAMS + stream]`.
/// Each stream is one purpose, so the numbers for noise, time and indices never overlap.
pub mod stream {
    /// How many streams each training step reserves.
    pub const STREAMS: u32 = 8;
    /// The source sample x₀ (a Box–Muller pair).
    pub const SOURCE_NOISE: u32 = 0;
    /// The time t: word 0 for uniform, both words for the logit-normal's normal.
    pub const TIME: u32 = 1;
    /// Word 0: index into the data pool; word 1: index into the source pool.
    pub const INDICES: u32 = 2;
    /// Word 0: class-label dropout for classifier-free guidance.
    pub const LABEL_DROP: u32 = 3;

    /// The counter's second word for `stream` at training step `step`.
    #[inline]
    pub fn word(step: u64, stream: u32) -> u32 {
        (step as u32).wrapping_mul(STREAMS).wrapping_add(stream)
    }
}

/// A sequential generator on top of [`threefry2x32`], for work that is not batched on the GPU
/// (building datasets, initialising weights, choosing projections). The counter is 64 bits, so a
/// stream never repeats in practice.
#[derive(Clone, Debug)]
pub struct Rng {
    key: [u32; 2],
    counter: u64,
    spare: Option<u32>,
    spare_normal: Option<f32>,
}

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            key: key_from_seed(seed),
            counter: 0,
            spare: None,
            spare_normal: None,
        }
    }

    /// A generator for `seed` in a named domain, so that different uses of one user seed
    /// (data, weights, evaluation) draw unrelated numbers.
    pub fn with_domain(seed: u64, domain: &str) -> Self {
        // FNV-1a of the domain name, mixed into the key.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in domain.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        Self::new(seed ^ hash.rotate_left(17))
    }

    /// 64 fresh random bits.
    #[inline]
    pub fn next_pair(&mut self) -> [u32; 2] {
        let counter = [self.counter as u32, (self.counter >> 32) as u32];
        self.counter = self.counter.wrapping_add(1);
        threefry2x32(self.key, counter)
    }

    /// 32 fresh random bits.
    #[inline]
    pub fn next_u32(&mut self) -> u32 {
        if let Some(word) = self.spare.take() {
            return word;
        }
        let [a, b] = self.next_pair();
        self.spare = Some(b);
        a
    }

    /// Uniform in `[0, 1)`.
    #[inline]
    pub fn uniform(&mut self) -> f32 {
        unit_f32(self.next_u32())
    }

    /// Uniform in `[lo, hi)`.
    #[inline]
    pub fn uniform_in(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.uniform()
    }

    /// A standard normal.
    #[inline]
    pub fn normal(&mut self) -> f32 {
        if let Some(z) = self.spare_normal.take() {
            return z;
        }
        let [z0, z1] = normal_pair(self.next_pair());
        self.spare_normal = Some(z1);
        z0
    }

    /// An index in `0..n`.
    #[inline]
    pub fn below(&mut self, n: usize) -> usize {
        index_below(self.next_u32(), n as u32) as usize
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

/// rand's distributions draw from the same counter-based stream (the picture sampler's
/// `WeightedIndex`); the GPU's draws keep calling Threefry directly.
impl rand::RngCore for Rng {
    fn next_u32(&mut self) -> u32 {
        Rng::next_u32(self)
    }

    fn next_u64(&mut self) -> u64 {
        let [lo, hi] = self.next_pair();
        u64::from(lo) | (u64::from(hi) << 32)
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for chunk in dst.chunks_mut(4) {
            let word = Rng::next_u32(self).to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rand_draws_from_the_same_stream() {
        use rand::RngCore as _;
        let mut a = Rng::new(9);
        let mut b = Rng::new(9);
        assert_eq!(rand::RngCore::next_u32(&mut a), b.next_u32());
        let mut bytes = [0u8; 6];
        a.fill_bytes(&mut bytes);
        let (w0, w1) = (b.next_u32().to_le_bytes(), b.next_u32().to_le_bytes());
        assert_eq!(bytes, [w0[0], w0[1], w0[2], w0[3], w1[0], w1[1]]);
    }

    /// Known-answer vectors from Random123's `kat_vectors` file.
    #[test]
    fn threefry_matches_random123_known_answers() {
        assert_eq!(threefry2x32([0, 0], [0, 0]), [0x6b20_0159, 0x99ba_4efe]);
        assert_eq!(
            threefry2x32([u32::MAX, u32::MAX], [u32::MAX, u32::MAX]),
            [0x1cb9_96fc, 0xbb00_2be7]
        );
        assert_eq!(
            threefry2x32([0x1319_8a2e, 0x0370_7344], [0x243f_6a88, 0x85a3_08d3]),
            [0xc492_3a9c, 0x483d_f7a0]
        );
    }

    #[test]
    fn uniform_and_normal_moments() {
        let mut rng = Rng::new(7);
        let n = 200_000;
        let (mut sum_u, mut sum_z, mut sum_z2) = (0.0_f64, 0.0_f64, 0.0_f64);
        for _ in 0..n {
            let u = rng.uniform();
            assert!((0.0..1.0).contains(&u));
            sum_u += f64::from(u);
            let z = f64::from(rng.normal());
            sum_z += z;
            sum_z2 += z * z;
        }
        let n = f64::from(n);
        assert!((sum_u / n - 0.5).abs() < 0.005);
        assert!((sum_z / n).abs() < 0.01);
        assert!((sum_z2 / n - 1.0).abs() < 0.01);
    }

    #[test]
    fn open_unit_excludes_zero() {
        assert!(open_unit_f32(0) > 0.0);
        assert!((open_unit_f32(u32::MAX) - 1.0).abs() < f32::EPSILON);
        assert!(unit_f32(u32::MAX) < 1.0);
    }

    #[test]
    fn domains_differ() {
        let a = Rng::with_domain(1, "data").next_u32();
        let b = Rng::with_domain(1, "weights").next_u32();
        assert_ne!(a, b);
    }
}

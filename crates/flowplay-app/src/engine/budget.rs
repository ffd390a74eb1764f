//! How much GPU work a frame submits: training steps, or network evaluations of a particle
//! refresh, sized so that frames stay on time.

/// Submissions the GPU may have queued: enough to keep it busy, few enough to stay responsive.
pub(crate) const GPU_QUEUE_DEPTH: usize = 2;

/// How much GPU work to submit a frame (training steps, or network evaluations of a particle
/// refresh) so that frames stay on time at 60 Hz: additive increase while frames are on time
/// and the GPU ran dry, multiplicative decrease when a frame is late. It stays a sixteenth below
/// the amount that last made a frame late, and forgets that amount after two seconds of frames
/// on time (the load may have changed), so a steady load misses about one frame in a hundred.
/// Where even the least amount leaves frames slower than 60 Hz (a slow GPU drawing, a million
/// particles), a frame is on time up to half again that baseline: the work still gets a third of
/// the frame instead of stalling.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct FrameBudget {
    units: u32,
    min: u32,
    max: u32,
    /// The amount that last made a frame late (`u32::MAX`: none).
    ceiling: u32,
    /// Frames on time in a row.
    calm: u32,
    /// The frame time with the least amount (0: not known yet).
    base: f32,
}

impl FrameBudget {
    /// A frame no longer than this is on time (60 Hz, with 5 % slack for timer jitter).
    pub(crate) const ON_TIME_SECS: f32 = 1.05 / 60.0;
    /// Frames on time between two increases.
    const CALM_FRAMES: u32 = 4;
    /// Frames on time after which the amount that was late is forgotten.
    const FORGET_FRAMES: u32 = 120;
    /// Where frames are slow anyway, a frame is on time up to this times the baseline.
    const SLOW_SHARE: f32 = 1.5;

    /// Starts at `start` units a frame, within `min..=max`.
    pub(crate) const fn new(start: u32, min: u32, max: u32) -> Self {
        Self {
            units: start,
            min,
            max,
            ceiling: u32::MAX,
            calm: 0,
            base: 0.0,
        }
    }

    /// Whether a frame of `frame_secs` is on time.
    fn on_time(&self, frame_secs: f32) -> bool {
        frame_secs <= Self::ON_TIME_SECS.max(Self::SLOW_SHARE * self.base)
    }

    /// The units to submit now (0: none), after a frame of `frame_secs` with `queued`
    /// submissions still on the GPU.
    pub(crate) fn next(&mut self, frame_secs: f32, queued: usize) -> u32 {
        // The baseline follows frames with the least amount, and no frame with more work can be
        // faster (which undoes a slow start).
        if frame_secs > 0.0 {
            if self.base <= 0.0 {
                self.base = frame_secs;
            } else if self.units == self.min {
                self.base += 0.1 * (frame_secs - self.base);
            }
            self.base = self.base.min(frame_secs);
        }
        if !self.on_time(frame_secs) {
            // A late frame at the least amount (start-up, a slow device) says nothing about
            // how much fits.
            if self.units > self.min {
                self.ceiling = self.units;
                self.units = (self.units / 4 * 3).max(self.min);
            }
            self.calm = 0;
        } else {
            self.calm += 1;
        }
        if queued >= GPU_QUEUE_DEPTH {
            return 0;
        }
        if queued == 0 && self.calm > 0 && self.calm.is_multiple_of(Self::CALM_FRAMES) {
            if self.calm >= Self::FORGET_FRAMES {
                self.calm = 0;
                self.ceiling = u32::MAX;
            }
            let grown = self
                .units
                .saturating_add((self.units / 8).max(1))
                .min(self.max);
            let hold = self.ceiling - (self.ceiling / 16).max(1);
            self.units = grown.min(hold).max(self.units);
        }
        self.units
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowplay_gpu::MAX_STEPS_PER_SUBMIT;

    const VSYNC: f32 = 1.0 / 60.0;

    /// Frames of a GPU that takes `base + steps × per_step` seconds a frame, presented at 60 Hz
    /// (a late frame waits for the next vertical blank): `(on-time share, mean steps a frame)`
    /// over `frames` frames after a two-second warm-up.
    fn simulate(base: f32, per_step: f32, frames: usize) -> (f64, f64) {
        let mut size = FrameBudget::new(1, 1, MAX_STEPS_PER_SUBMIT);
        let mut frame_secs = VSYNC;
        let (mut on_time, mut steps_total) = (0, 0_u64);
        for i in 0..120 + frames {
            let steps = size.next(frame_secs, 0);
            let work = base + steps as f32 * per_step;
            frame_secs = (work / VSYNC).ceil().max(1.0) * VSYNC;
            if i >= 120 {
                on_time += usize::from(frame_secs <= FrameBudget::ON_TIME_SECS);
                steps_total += u64::from(steps);
            }
        }
        (
            on_time as f64 / frames as f64,
            steps_total as f64 / frames as f64,
        )
    }

    #[test]
    fn submissions_grow_while_frames_are_on_time() {
        let mut size = FrameBudget::new(1, 1, MAX_STEPS_PER_SUBMIT);
        let mut steps = 0;
        for _ in 0..160 {
            steps = size.next(VSYNC, 0);
        }
        assert!(steps >= 64, "after 160 frames on time: {steps} steps");
        for _ in 0..2000 {
            steps = size.next(VSYNC, 0);
        }
        assert_eq!(steps, MAX_STEPS_PER_SUBMIT);
        // Nothing more while two submissions are queued; a late frame shrinks the next one.
        assert_eq!(size.next(VSYNC, GPU_QUEUE_DEPTH), 0);
        assert_eq!(size.next(2.0 * VSYNC, 1), MAX_STEPS_PER_SUBMIT * 3 / 4);
    }

    #[test]
    fn a_steady_load_keeps_nearly_every_frame_on_time() {
        // 4 ms of drawing and 0.1 ms a training step: about 126 steps fit a frame.
        let (on_time, steps) = simulate(0.004, 0.0001, 1200);
        assert!(
            on_time >= 0.98,
            "{:.1} % of frames on time",
            100.0 * on_time
        );
        assert!(
            steps >= 100.0,
            "{steps:.1} steps a frame of about 126 that fit"
        );
        // A slow device (a step takes two frames): about one step a submission, never zero.
        let (_, steps) = simulate(0.004, 0.04, 200);
        assert!((1.0..1.1).contains(&steps), "{steps}");
    }

    #[test]
    fn where_frames_are_slow_anyway_the_work_gets_a_third_of_the_frame() {
        // Drawing alone takes 100 ms (no vsync to wait for); a step takes 1 ms.
        let mut size = FrameBudget::new(1, 1, MAX_STEPS_PER_SUBMIT);
        let mut frame_secs = 0.1;
        let mut steps = 0;
        for _ in 0..600 {
            steps = size.next(frame_secs, 0);
            frame_secs = 0.1 + steps as f32 * 0.001;
        }
        assert!((25..=50).contains(&steps), "{steps} steps a 100 ms frame");
    }

    #[test]
    fn a_late_start_does_not_cap_training() {
        let mut size = FrameBudget::new(1, 1, MAX_STEPS_PER_SUBMIT);
        for _ in 0..5 {
            size.next(0.5, 0);
        }
        let mut steps = 0;
        for _ in 0..160 {
            steps = size.next(VSYNC, 0);
        }
        assert!(steps >= 64, "{steps}");
    }
}

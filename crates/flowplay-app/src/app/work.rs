//! What a frame does before it draws: training, the particles' refresh, evaluations, reflow
//! couplings coming back, the scrubber, the rates, and following the address.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use flowplay_core::flow::SampleRequest;
use flowplay_core::sampler::{SamplerConfig, Solver};
use web_time::{Duration, Instant};

use super::PlaygroundApp;
use super::state::{EVAL_EVERY, EVAL_PACE, Section, refresh_due};
use crate::engine::{Backend, COMPARED, CURRENT, particle_record, particle_request};
use crate::error::AppError;
use crate::web;

/// Seconds for the particles to travel from t = 0 to t = 1 at speed 1.
pub(crate) const TRAVEL_SECS: f32 = 3.0;
/// Steps averaged per point of the loss curve.
pub(crate) const LOSS_WINDOW: usize = 20;

impl PlaygroundApp {
    /// The frame's work, `dt` seconds after the last frame.
    pub(crate) fn work(&mut self, dt: f32) {
        if self.flow.secs.is_none() && self.flow.finished_on_device() {
            self.flow.secs = Some(self.flow.at.elapsed().as_secs_f64());
        }
        if self.training && !self.frame.ahead {
            self.train_for_a_frame();
            if self.flow.pending.is_none()
                && refresh_due(
                    self.flow.secs,
                    self.flow.at.elapsed().as_secs_f64(),
                    self.engine.slices(),
                )
            {
                self.flow.stale = true;
            }
        } else if let Err(why) = self.engine.drain() {
            self.tell(&why);
        }
        self.update_loss_curve();
        self.poll_reflow();
        self.evaluate();
        if self.chrome.is_open(Section::Lab) {
            let data = &self.data.held_out;
            let sampling = &self.settings.sampling;
            if let Err(why) =
                self.engine
                    .lab_frame(data, sampling.rescale_t, sampling.ema, self.training)
            {
                self.tell(&why);
                self.chrome.set_open(Section::Lab, false);
            }
        }
        self.keep_compare_on_path();
        self.advance_flow();
        if self.flow.stale {
            self.refresh_flow();
        }
        if self.player.playing {
            let dt = dt.min(0.1);
            self.player.time = (self.player.time + self.player.speed * dt / TRAVEL_SECS) % 1.0;
        }
        self.frame.frames += 1;
        self.frame.fps = self.frame.frame_rate.record(self.frame.frames as f64);
        self.frame.steps_per_sec = if self.training {
            self.frame
                .steps_rate
                .record(self.engine.steps_done() as f64)
        } else {
            self.frame.steps_rate.reset();
            0.0
        };
    }

    /// Trains for about a frame, and keeps the loss curve current. The CPU reference trains for
    /// half the last frame's time, within 8–50 ms: at 60 fps that leaves the frame smooth, and
    /// where drawing is slow anyway (a software renderer) training still gets its share.
    pub(crate) fn train_for_a_frame(&mut self) {
        let frame_secs = self.frame.frame_secs;
        let share = if self.frame.share > 0.0 {
            self.frame.share
        } else {
            1.0
        };
        let budget = Duration::from_secs_f32(share * (0.5 * frame_secs).clamp(0.008, 0.050));
        match self.engine.train_frame(frame_secs, budget) {
            Ok(()) => {}
            Err(AppError::Exploded { error, restored }) => {
                self.training = false;
                self.rewound_to(restored);
                self.notices.error = Some(format!(
                    "{error}. Training is paused, and the weights of step {restored}, from before \
                     the loss took off, are back: lower the learning rate and press Train to go \
                     on."
                ));
            }
            Err(why) => {
                self.training = false;
                self.notices.error = Some(format!(
                    "{why}. Training is paused; the weights of the last good step are kept."
                ));
            }
        }
        self.update_loss_curve();
    }

    /// After the engine went back to `step`: the curves forget the undone steps, and the
    /// particles and evaluation follow the restored weights.
    fn rewound_to(&mut self, step: u64) {
        let step_f = step as f64;
        self.curves.loss.truncate(step as usize / LOSS_WINDOW);
        for curve in [
            &mut self.curves.w2,
            &mut self.curves.straightness,
            &mut self.curves.nll,
        ] {
            curve.retain(|p| p[0] <= step_f);
        }
        self.eval.last = None;
        self.eval.evaluated_step = None;
        self.flow.stale = true;
    }

    /// The loss curve as means over windows of [`LOSS_WINDOW`] steps.
    pub(crate) fn update_loss_curve(&mut self) {
        let losses = self.engine.losses();
        let done = self.curves.loss.len() * LOSS_WINDOW;
        for (k, chunk) in losses[done.min(losses.len())..]
            .chunks_exact(LOSS_WINDOW)
            .enumerate()
        {
            let mean = chunk.iter().map(|&l| f64::from(l)).sum::<f64>() / LOSS_WINDOW as f64;
            let step = (done + (k + 1) * LOSS_WINDOW) as f64;
            self.curves.loss.push([step, mean]);
        }
    }

    /// The particles' request, with the count clamped to what the device can draw.
    pub(crate) fn flow_request(&mut self) -> SampleRequest {
        let sampling = &self.settings.sampling;
        let sampler = if self.rounds.one_step {
            SamplerConfig::new(Solver::Euler, 1)
        } else {
            sampling.sampler()
        };
        let asked = sampling.particles;
        let endpoints = self.settings.view.layers.endpoints();
        let max = self
            .engine
            .max_particles(&sampler, particle_record(endpoints));
        self.notices.limit = (asked > max).then(|| {
            let why = match self.engine.backend() {
                Backend::Gpu => format!(
                    "this GPU draws at most {max} with {} solver steps",
                    sampler.steps
                ),
                Backend::Cpu => format!("the CPU reference integrates at most {max}"),
            };
            format!("{asked} particles asked for, {max} shown: {why}.")
        });
        particle_request(
            sampler,
            asked.min(max),
            self.settings.data.seed ^ 0xF10,
            endpoints,
            self.settings.classes(),
            self.settings.sample_class(),
            self.settings.sampling.cfg_scale,
        )
    }

    /// Re-integrates the particles with the current weights, unless the last finished GPU
    /// refresh is still running on the GPU. A refresh still being encoded is dropped and
    /// started afresh (the settings changed under it).
    pub(crate) fn refresh_flow(&mut self) {
        if !self.flow.finished_on_device() && self.flow.pending.is_none() {
            return;
        }
        let request = self.flow_request();
        let started = Instant::now();
        let mut refreshed =
            self.engine
                .refresh_flow(CURRENT, None, &request, self.settings.sampling.ema);
        if let Some(round) = self
            .rounds
            .compare
            .and_then(|r| self.rounds.finished.get(r))
            && let Ok(current_done) = refreshed
        {
            refreshed = self
                .engine
                .refresh_flow(COMPARED, Some(&round.snapshot), &request, true)
                .map(|done| done && current_done);
        }
        match refreshed {
            Ok(done) => {
                if self.engine.backend() == Backend::Gpu {
                    self.flow.done.store(false, Ordering::Release);
                }
                self.flow.pending = Some(request);
                if done {
                    self.flow_finished();
                }
                // The CPU integrates within this call; the GPU's time is known when it is done.
                self.flow.secs = (self.engine.backend() == Backend::Cpu)
                    .then(|| started.elapsed().as_secs_f64());
            }
            Err(why) => self.tell(&why),
        }
        self.flow.stale = false;
        self.flow.at = Instant::now();
    }

    /// Encodes the next slice of a GPU refresh under way (a frame's worth).
    pub(crate) fn advance_flow(&mut self) {
        if self.flow.pending.is_some() && self.engine.advance_flows(self.frame.frame_secs) {
            self.flow_finished();
        }
    }

    /// The refresh under way has been submitted whole: the drawing shows it from now on.
    fn flow_finished(&mut self) {
        let Some(request) = self.flow.pending.take() else {
            return;
        };
        if let Some(gpu) = &self.device.gpu
            && self.engine.backend() == Backend::Gpu
        {
            let done = Arc::clone(&self.flow.done);
            gpu.queue
                .on_submitted_work_done(move || done.store(true, Ordering::Release));
        }
        self.flow.request = Some(request);
        self.flow.version += 1;
    }

    /// Starts an evaluation when one is due, and records finished ones.
    pub(crate) fn evaluate(&mut self) {
        if let Some(result) = self.engine.poll_eval(&self.data.held_out) {
            if self.engine.backend() == Backend::Gpu {
                self.eval.secs = Some(self.eval.at.elapsed().as_secs_f64());
            }
            match result {
                Ok(eval) => {
                    let step = eval.step as f64;
                    self.curves.w2.push([step, eval.w2]);
                    self.curves.straightness.push([step, eval.straightness]);
                    if let Some(nll) = eval.nll {
                        self.curves.nll.push([step, nll]);
                    }
                    self.eval.last = Some(eval);
                }
                Err(why) => self.tell(&why),
            }
        }
        let step = self.engine.steps_done();
        let due = if self.training {
            let every = EVAL_EVERY
                .as_secs_f64()
                .max(EVAL_PACE * self.eval.secs.unwrap_or(0.0));
            self.eval.at.elapsed().as_secs_f64() > every
        } else {
            step > 0 && self.eval.evaluated_step != Some(step)
        };
        if due && self.eval.evaluated_step != Some(step) {
            let started = Instant::now();
            let sampler = self.settings.sampling.sampler();
            match self
                .engine
                .start_eval(&sampler, &self.data.held_out, self.settings.sampling.ema)
            {
                Ok(true) => {
                    self.eval.evaluated_step = Some(step);
                    self.eval.at = started;
                    // The CPU evaluates within the call; the GPU's time is known at its result.
                    if self.engine.backend() == Backend::Cpu {
                        self.eval.secs = Some(started.elapsed().as_secs_f64());
                    }
                }
                Ok(false) => {}
                Err(why) => {
                    self.tell(&why);
                    self.eval.evaluated_step = Some(step);
                }
            }
        }
    }

    /// Picks up a reflow coupling generated on the GPU.
    pub(crate) fn poll_reflow(&mut self) {
        if let Some(Err(why)) = self.engine.poll_reflow() {
            // The round never started: forget its entry.
            if let Some(round) = self.rounds.finished.pop() {
                self.rounds.start -= round.steps;
            }
            self.notices.error = Some(format!("The reflow coupling could not be built: {why}"));
        }
    }

    /// Stops drawing a round beside when it was trained on another path than the current one:
    /// its network belongs to its path.
    pub(crate) fn keep_compare_on_path(&mut self) {
        let path = &self.settings.training.path;
        if let Some(r) = self.rounds.compare
            && self
                .rounds
                .finished
                .get(r)
                .is_none_or(|info| info.path != *path)
        {
            self.rounds.compare = None;
            self.flow.stale = true;
        }
    }

    /// Writes the settings into the URL hash after they changed, once no pointer is down (not
    /// on every frame of a slider drag: browsers throttle history updates).
    pub(crate) fn write_hash_when_settled(&mut self) {
        if self.edits.hash_dirty && !self.frame.pointer_down {
            web::write_hash(&self.address_query());
            self.edits.hash = web::read_hash();
            self.edits.hash_dirty = false;
        }
    }

    /// Applies the URL hash when it changed (the browser's address bar, a shared link, a test).
    pub(crate) fn follow_hash(&mut self) {
        let Some(hash) = web::read_hash() else {
            return;
        };
        if self.edits.hash.as_deref() == Some(hash.as_str()) {
            return;
        }
        self.edits.hash = Some(hash.clone());
        match self.settings.with_query(&hash) {
            Ok((settings, actions)) => {
                self.apply_settings(settings);
                self.act(&actions);
            }
            Err(why) => self.notices.error = Some(why),
        }
    }
}

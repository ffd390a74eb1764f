//! `--backend`: train (and sample) on the GPU through wgpu, or on the CPU reference.

use anyhow::{Context, Result};
use flowplay_core::data::Points;
use flowplay_core::flow::FlowModel;
use flowplay_core::guard::DivergenceGuard;
use flowplay_core::sampler::SamplerConfig;
use flowplay_core::train::{CpuTrainer, StepStats, TrainConfig, reflow_pool};
use flowplay_gpu::{GpuContext, GpuTrainer};

/// Where the work runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum BackendArg {
    /// A hardware GPU with compute shaders when there is one, else the CPU. A software
    /// adapter (Mesa's llvmpipe, SwiftShader) emulates the GPU on the CPU hundreds of times more
    /// slowly than the CPU reference runs, so it is used only when asked for with `gpu`.
    #[default]
    Auto,
    /// The GPU (WGSL compute shaders through wgpu); an error when there is none.
    Gpu,
    /// The CPU reference.
    Cpu,
}

/// A GPU context when `arg` asks for one and one exists. `Auto` falls back to the CPU silently
/// (the summary line and `metrics.json` say where the work ran); `Gpu` without one is an error.
pub(crate) fn gpu_for(arg: BackendArg) -> Result<Option<GpuContext>> {
    match arg {
        BackendArg::Cpu => Ok(None),
        BackendArg::Gpu => Ok(Some(GpuContext::new_blocking().context("--backend gpu")?)),
        BackendArg::Auto => Ok(GpuContext::new_blocking()
            .ok()
            .filter(|c| c.adapter_info.device_type != wgpu::DeviceType::Cpu)),
    }
}

/// A trainer on either backend.
pub(crate) enum Trainer {
    /// The CPU reference.
    Cpu(Box<CpuTrainer>),
    /// The WGSL trainer, with the device it runs on.
    Gpu {
        context: Box<GpuContext>,
        trainer: Box<GpuTrainer>,
    },
}

impl Trainer {
    /// A trainer for `config` on `pool` (and the source pool), on the GPU when `gpu` is given.
    pub(crate) fn new(
        gpu: Option<GpuContext>,
        config: TrainConfig,
        pool: Points,
        source: Option<Points>,
    ) -> Result<Self> {
        Ok(match gpu {
            None => Self::Cpu(Box::new(CpuTrainer::with_custom(
                config,
                Some(pool),
                source,
            )?)),
            Some(context) => {
                let trainer = GpuTrainer::with_custom(
                    &context.device,
                    &context.queue,
                    config,
                    Some(pool),
                    source,
                )?;
                Self::Gpu {
                    context: Box::new(context),
                    trainer: Box::new(trainer),
                }
            }
        })
    }

    /// "CPU, 2 threads" or "GPU: NVIDIA H100 80GB HBM3 (Vulkan, DiscreteGpu)".
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Cpu(_) => format!("CPU, {} threads", flowplay_core::par::threads()),
            Self::Gpu { context, .. } => format!("GPU: {}", context.describe()),
        }
    }

    /// Trains `steps` steps, calling `progress` with each step's statistics (on the GPU as each
    /// submission's statistics come back). A loss or gradient norm that explodes far above its
    /// recent level ([`DivergenceGuard`]) ends training with [`flowplay_core::Error::Exploded`],
    /// as a non-finite one does with `Diverged`.
    pub(crate) fn train(
        &mut self,
        steps: u64,
        guard: &mut DivergenceGuard,
        mut progress: impl FnMut(&StepStats),
    ) -> Result<()> {
        let mut step = self.steps_done();
        let mut exploded: Option<flowplay_core::Error> = None;
        let mut watch = |stats: &StepStats| -> bool {
            if exploded.is_none() {
                if let Err(e) = guard.observe(step, stats) {
                    exploded = Some(e);
                } else {
                    progress(stats);
                }
            }
            step += 1;
            exploded.is_some()
        };
        match self {
            Self::Cpu(trainer) => {
                for _ in 0..steps {
                    if watch(&trainer.step()?) {
                        break;
                    }
                }
            }
            // The GPU runs ahead of its statistics; the steps after an explosion are discarded
            // with the run, which writes nothing.
            Self::Gpu { trainer, .. } => trainer.train_blocking_with(steps, |s| {
                watch(s);
            })?,
        }
        match exploded {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// The model with the raw or EMA weights.
    pub(crate) fn model(&self, use_ema: bool) -> Result<FlowModel> {
        Ok(match self {
            Self::Cpu(trainer) => trainer.model(use_ema),
            Self::Gpu { trainer, .. } => trainer.model(use_ema)?,
        })
    }

    /// The configuration.
    pub(crate) fn config(&self) -> &TrainConfig {
        match self {
            Self::Cpu(trainer) => trainer.config(),
            Self::Gpu { trainer, .. } => trainer.config(),
        }
    }

    /// The loss of every step.
    pub(crate) fn losses(&self) -> &[f32] {
        match self {
            Self::Cpu(trainer) => trainer.losses(),
            Self::Gpu { trainer, .. } => trainer.losses(),
        }
    }

    /// Steps taken in all rounds.
    pub(crate) fn steps_done(&self) -> u64 {
        match self {
            Self::Cpu(trainer) => trainer.steps_done(),
            Self::Gpu { trainer, .. } => trainer.steps_done(),
        }
    }

    /// The source pool (`None` for N(0, I)).
    pub(crate) fn source_pool(&self) -> Option<&Points> {
        match self {
            Self::Cpu(trainer) => trainer.source_pool(),
            Self::Gpu { trainer, .. } => trainer.source_pool(),
        }
    }

    /// Starts the next reflow round (QR §7.1) with `pairs` pairs generated by the current model.
    pub(crate) fn start_reflow_round(
        &mut self,
        pairs: usize,
        sampler: &SamplerConfig,
        use_ema: bool,
        steps: u64,
    ) -> Result<()> {
        match self {
            Self::Cpu(trainer) => trainer.start_reflow_round(pairs, sampler, use_ema, steps)?,
            Self::Gpu { trainer, .. } => {
                let pool = reflow_pool(
                    &trainer.model(use_ema)?,
                    trainer.config(),
                    trainer.round(),
                    pairs,
                    sampler,
                    trainer.data(),
                    trainer.source_pool(),
                )?;
                trainer.start_reflow_round(pool, steps)?;
            }
        }
        Ok(())
    }
}

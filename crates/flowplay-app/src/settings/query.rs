//! The settings as URL state (`#dataset=moons&path=vp-cosine&layers=field,density&train=1`): one
//! table of keys per settings group, each key with how it is written and read. The desktop binary
//! takes the same string as its first argument.

use flowplay_core::data::Dataset;
use flowplay_core::sampler::Solver;

use super::{
    Compute, DataSettings, ModelSettings, OptimSettings, PathKind, SamplingSettings, Settings,
    TrainingSettings, ViewSettings,
};
use crate::layers::{LayerId, LayerSet};

/// One URL key of a settings group `G`.
struct Key<G> {
    name: &'static str,
    /// Writes the value (`None`: an old key that is still read but no longer written).
    write: Option<fn(&G) -> String>,
    /// Reads `value` into the group, or says what was wrong with it.
    read: fn(&mut G, &str, &str) -> Result<(), String>,
}

/// `value` as a number in `lo..=hi`.
fn number<T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy>(
    key: &str,
    value: &str,
    lo: T,
    hi: T,
) -> Result<T, String> {
    match value.parse::<T>() {
        Ok(v) if v >= lo && v <= hi => Ok(v),
        _ => Err(format!("{key}={value} (a number from {lo} to {hi})")),
    }
}

fn flag(key: &str, value: &str) -> Result<bool, String> {
    match value {
        "1" | "true" | "on" => Ok(true),
        "0" | "false" | "off" => Ok(false),
        _ => Err(format!("{key}={value} (1 or 0)")),
    }
}

fn on(b: bool) -> String {
    if b { "1" } else { "0" }.to_string()
}

const DATA_KEYS: &[Key<DataSettings>] = &[
    Key {
        name: "dataset",
        write: Some(|d| d.dataset.name().to_string()),
        read: |d, key, value| {
            let dataset = value
                .parse::<Dataset>()
                .ok()
                .filter(|d| *d != Dataset::Normal)
                .ok_or_else(|| format!("{key}={value} (an unknown dataset)"))?;
            // A link names a built-in dataset; the user's own points stay only when it names
            // the one they replaced (the page's own address after an import).
            if dataset != d.dataset {
                d.custom = None;
            }
            d.dataset = dataset;
            Ok(())
        },
    },
    Key {
        name: "source",
        write: Some(|d| d.source.name().to_string()),
        read: |d, key, value| {
            d.source = value
                .parse::<Dataset>()
                .map_err(|_| format!("{key}={value} (normal or a dataset)"))?;
            Ok(())
        },
    },
    Key {
        name: "seed",
        write: Some(|d| d.seed.to_string()),
        read: |d, key, value| {
            d.seed = number(key, value, 0, u64::from(u32::MAX))?;
            Ok(())
        },
    },
];

const MODEL_KEYS: &[Key<ModelSettings>] = &[
    Key {
        name: "width",
        write: Some(|m| m.hidden.to_string()),
        read: |m, key, value| {
            m.hidden = number(key, value, 1, 512)?;
            Ok(())
        },
    },
    Key {
        name: "depth",
        write: Some(|m| m.depth.to_string()),
        read: |m, key, value| {
            m.depth = number(key, value, 1, 6)?;
            Ok(())
        },
    },
    Key {
        name: "tdim",
        write: Some(|m| m.t_dim.to_string()),
        read: |m, key, value| {
            let t_dim = number(key, value, 2, 1024)?;
            if t_dim % 2 == 1 {
                return Err(format!("{key}={value} (an even number)"));
            }
            m.t_dim = t_dim;
            Ok(())
        },
    },
    Key {
        name: "tscale",
        write: Some(|m| if m.t_times_1000 { "1000" } else { "1" }.to_string()),
        read: |m, key, value| {
            m.t_times_1000 = match value {
                "1" => false,
                "1000" => true,
                _ => return Err(format!("{key}={value} (1 or 1000)")),
            };
            Ok(())
        },
    },
    Key {
        name: "classes",
        write: Some(|m| on(m.conditional)),
        read: |m, key, value| {
            m.conditional = flag(key, value)?;
            Ok(())
        },
    },
];

const TRAINING_KEYS: &[Key<TrainingSettings>] = &[
    Key {
        name: "path",
        write: Some(|t| t.path.kind.key().to_string()),
        read: |t, key, value| {
            t.path.kind = PathKind::ALL
                .into_iter()
                .find(|p| p.key() == value)
                .ok_or_else(|| format!("{key}={value} (rectified-flow, vp-cosine or ve)"))?;
            Ok(())
        },
    },
    Key {
        name: "sigma_min",
        write: Some(|t| t.path.ve_sigma[0].to_string()),
        read: |t, key, value| {
            t.path.ve_sigma[0] = number(key, value, 1e-4, 10.0)?;
            Ok(())
        },
    },
    Key {
        name: "sigma_max",
        write: Some(|t| t.path.ve_sigma[1].to_string()),
        read: |t, key, value| {
            t.path.ve_sigma[1] = number(key, value, 0.1, 1000.0)?;
            Ok(())
        },
    },
    Key {
        name: "t",
        write: Some(|t| {
            if t.logit_normal {
                "logit-normal"
            } else {
                "uniform"
            }
            .to_string()
        }),
        read: |t, key, value| {
            t.logit_normal = match value {
                "logit-normal" => true,
                "uniform" => false,
                _ => return Err(format!("{key}={value} (logit-normal or uniform)")),
            };
            Ok(())
        },
    },
    Key {
        name: "m",
        write: Some(|t| t.ln_mean.to_string()),
        read: |t, key, value| {
            t.ln_mean = number(key, value, -3.0, 3.0)?;
            Ok(())
        },
    },
    Key {
        name: "s",
        write: Some(|t| t.ln_std.to_string()),
        read: |t, key, value| {
            t.ln_std = number(key, value, 0.1, 3.0)?;
            Ok(())
        },
    },
    Key {
        name: "batch",
        write: Some(|t| t.batch.to_string()),
        read: |t, key, value| {
            t.batch = number(key, value, 1, 8192)?;
            Ok(())
        },
    },
    Key {
        name: "ot",
        write: Some(|t| on(t.ot)),
        read: |t, key, value| {
            t.ot = flag(key, value)?;
            Ok(())
        },
    },
    Key {
        name: "rf_sigma_min",
        write: Some(|t| t.path.rf_sigma_min.to_string()),
        read: |t, key, value| {
            t.path.rf_sigma_min = number(key, value, 0.0, 0.5)?;
            Ok(())
        },
    },
    Key {
        name: "precondition",
        write: Some(|t| on(t.path.ve_precondition)),
        read: |t, key, value| {
            t.path.ve_precondition = flag(key, value)?;
            Ok(())
        },
    },
    Key {
        name: "p_drop",
        write: Some(|t| t.p_drop.to_string()),
        read: |t, key, value| {
            t.p_drop = number(key, value, 0.0, 0.95)?;
            Ok(())
        },
    },
];

const OPTIM_KEYS: &[Key<OptimSettings>] = &[
    Key {
        name: "lr",
        write: Some(|o| o.lr.to_string()),
        read: |o, key, value| {
            o.lr = number(key, value, 1e-6, 1.0)?;
            Ok(())
        },
    },
    Key {
        name: "ema",
        write: Some(|o| o.ema.to_string()),
        read: |o, key, value| {
            o.ema = number(key, value, 0.0, 0.99999)?;
            Ok(())
        },
    },
    Key {
        name: "clip",
        write: Some(|o| o.clip.to_string()),
        read: |o, key, value| {
            o.clip = number(key, value, 0.0, 1000.0)?;
            Ok(())
        },
    },
    Key {
        name: "wd",
        write: Some(|o| o.weight_decay.to_string()),
        read: |o, key, value| {
            o.weight_decay = number(key, value, 0.0, 1.0)?;
            Ok(())
        },
    },
];

const SAMPLING_KEYS: &[Key<SamplingSettings>] = &[
    Key {
        name: "class",
        write: Some(|s| s.class.map_or("all".to_string(), |c| c.to_string())),
        read: |s, key, value| {
            s.class = match value {
                "all" | "" => None,
                _ => Some(number(key, value, 0, 1023)?),
            };
            Ok(())
        },
    },
    Key {
        name: "weights",
        write: Some(|s| if s.ema { "ema" } else { "raw" }.to_string()),
        read: |s, key, value| {
            s.ema = match value {
                "ema" => true,
                "raw" => false,
                _ => return Err(format!("{key}={value} (ema or raw)")),
            };
            Ok(())
        },
    },
    Key {
        name: "solver",
        write: Some(|s| s.solver.name().to_string()),
        read: |s, key, value| {
            s.solver = value
                .parse::<Solver>()
                .map_err(|_| format!("{key}={value} (euler, heun or rk4)"))?;
            Ok(())
        },
    },
    Key {
        name: "steps",
        write: Some(|s| s.steps.to_string()),
        read: |s, key, value| {
            s.steps = number(key, value, 1, 200)?;
            Ok(())
        },
    },
    Key {
        name: "rescale",
        write: Some(|s| s.rescale_t.to_string()),
        read: |s, key, value| {
            s.rescale_t = number(key, value, 0.05, 20.0)?;
            Ok(())
        },
    },
    Key {
        name: "cfg",
        write: Some(|s| s.cfg_scale.to_string()),
        read: |s, key, value| {
            s.cfg_scale = number(key, value, 0.0, 20.0)?;
            Ok(())
        },
    },
    Key {
        name: "particles",
        write: Some(|s| s.particles.to_string()),
        read: |s, key, value| {
            s.particles = number(key, value, 1, super::MAX_PARTICLES)?;
            Ok(())
        },
    },
];

const VIEW_KEYS: &[Key<ViewSettings>] = &[
    Key {
        name: "layers",
        write: Some(|v| v.layers.to_query()),
        read: |v, key, value| {
            v.layers = LayerSet::from_query(value).map_err(|bad| {
                format!(
                    "{key}={value} ('{bad}' is not a layer; the layers are {})",
                    LayerId::ALL.map(LayerId::key).join(", ")
                )
            })?;
            Ok(())
        },
    },
    Key {
        name: "field_class",
        write: Some(|v| v.field_class.map_or("none".to_string(), |c| c.to_string())),
        read: |v, key, value| {
            v.field_class = match value {
                "none" | "" => None,
                _ => Some(number(key, value, 0, 1023)?),
            };
            Ok(())
        },
    },
    // Links from before the layers: `trails=0` and `endpoints=1` still switch those layers.
    Key {
        name: "trails",
        write: None,
        read: |v, key, value| {
            v.layers.set(LayerId::Trails, flag(key, value)?);
            Ok(())
        },
    },
    Key {
        name: "endpoints",
        write: None,
        read: |v, key, value| {
            v.layers.set(LayerId::Endpoints, flag(key, value)?);
            Ok(())
        },
    },
];

const COMPUTE_KEYS: &[Key<Compute>] = &[Key {
    name: "compute",
    write: Some(|c| c.key().to_string()),
    read: |c, key, value| {
        *c = Compute::ALL
            .into_iter()
            .find(|c| c.key() == value)
            .ok_or_else(|| format!("{key}={value} (auto, gpu or cpu)"))?;
        Ok(())
    },
}];

fn write_keys<G>(group: &G, keys: &[Key<G>], out: &mut Vec<String>) {
    for key in keys {
        if let Some(write) = key.write {
            out.push(format!("{}={}", key.name, write(group)));
        }
    }
}

/// Reads `key=value` into `group` if `key` is one of its keys.
fn read_key<G>(
    group: &mut G,
    keys: &[Key<G>],
    key: &str,
    value: &str,
) -> Option<Result<(), String>> {
    keys.iter()
        .find(|k| k.name == key)
        .map(|k| (k.read)(group, key, value))
}

impl Settings {
    /// The settings as URL state: `dataset=moons&path=rectified-flow&…` (without `#`).
    pub(crate) fn to_query(&self) -> String {
        let mut out = Vec::new();
        write_keys(&self.data, DATA_KEYS, &mut out);
        write_keys(&self.model, MODEL_KEYS, &mut out);
        write_keys(&self.training, TRAINING_KEYS, &mut out);
        write_keys(&self.optim, OPTIM_KEYS, &mut out);
        write_keys(&self.sampling, SAMPLING_KEYS, &mut out);
        write_keys(&self.view, VIEW_KEYS, &mut out);
        write_keys(&self.compute, COMPUTE_KEYS, &mut out);
        out.join("&")
    }

    /// Every key the URL state is written with (and `train`).
    #[cfg(test)]
    pub(crate) fn query_keys() -> Vec<&'static str> {
        fn written<G>(keys: &[Key<G>]) -> impl Iterator<Item = &'static str> + '_ {
            keys.iter().filter(|k| k.write.is_some()).map(|k| k.name)
        }
        written(DATA_KEYS)
            .chain(written(MODEL_KEYS))
            .chain(written(TRAINING_KEYS))
            .chain(written(OPTIM_KEYS))
            .chain(written(SAMPLING_KEYS))
            .chain(written(VIEW_KEYS))
            .chain(written(COMPUTE_KEYS))
            .chain(["train"])
            .collect()
    }

    /// Applies URL state (`key=value&…`, a leading `#` or `?` allowed) on top of `self`. Keys not
    /// given keep their values. `train` and `lesson` are returned, not stored: they are
    /// actions; `lesson=N` (1-based) starts from that lesson's playground instead of `self`
    /// (keeping `compute`), and the other keys apply on top of it. Every problem is reported in
    /// one message and nothing is changed when there is one.
    pub(crate) fn with_query(&self, query: &str) -> Result<(Self, Actions), String> {
        let query = query.trim_start_matches(['#', '?']);
        let pairs = || {
            query
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        };
        let mut actions = Actions::default();
        let mut problems = Vec::new();
        let mut out = self.clone();
        if let Some((key, value)) = pairs().rfind(|(k, _)| *k == "lesson") {
            let lessons = crate::lessons::LESSONS.len();
            match number(key, value, 1, lessons) {
                Ok(n) => {
                    let base = Self {
                        compute: self.compute,
                        ..Self::default()
                    };
                    let setup = crate::lessons::LESSONS[n - 1].setup;
                    match base.with_query(setup) {
                        Ok((settings, lesson)) => {
                            out = settings;
                            actions.train = lesson.train;
                            actions.lesson = Some(n - 1);
                        }
                        Err(why) => problems.push(format!("lesson {n} ({why})")),
                    }
                }
                Err(why) => problems.push(why),
            }
        }
        for (key, value) in pairs() {
            let read = read_key(&mut out.data, DATA_KEYS, key, value)
                .or_else(|| read_key(&mut out.model, MODEL_KEYS, key, value))
                .or_else(|| read_key(&mut out.training, TRAINING_KEYS, key, value))
                .or_else(|| read_key(&mut out.optim, OPTIM_KEYS, key, value))
                .or_else(|| read_key(&mut out.sampling, SAMPLING_KEYS, key, value))
                .or_else(|| read_key(&mut out.view, VIEW_KEYS, key, value))
                .or_else(|| read_key(&mut out.compute, COMPUTE_KEYS, key, value))
                .unwrap_or_else(|| match key {
                    "train" => flag(key, value).map(|t| actions.train = Some(t)),
                    "open" => value
                        .split(',')
                        .filter(|v| !v.is_empty())
                        .try_for_each(|v| {
                            crate::app::Section::from_key(v)
                                .map(|s| actions.open.push(s))
                                .ok_or_else(|| format!("open={v} (not a section)"))
                        }),
                    "second" => super::Comparison::from_key(value)
                        .map(|c| actions.second = Some(c))
                        .ok_or_else(|| format!("second={value} (path, coupling, time or solver)")),
                    // Read first, above.
                    "lesson" => Ok(()),
                    _ => Err(format!("'{key}' (not a setting)")),
                });
            if let Err(why) = read {
                problems.push(why);
            }
        }
        if problems.is_empty() {
            Ok((out, actions))
        } else {
            Err(format!(
                "The address has settings that were not understood, so none were applied: {}.",
                problems.join("; ")
            ))
        }
    }
}

/// What an address asks the page to do, besides settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Actions {
    /// `train=1` or `train=0`: start or pause training.
    pub(crate) train: Option<bool>,
    /// `lesson=N`: open lesson N (stored 0-based).
    pub(crate) lesson: Option<usize>,
    /// `open=lab,compare`: open these sections of the controls.
    pub(crate) open: Vec<crate::app::Section>,
    /// `second=path`: a second run beside the first that differs in this.
    pub(crate) second: Option<super::Comparison>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_state_round_trips() {
        let mut layers = LayerSet::default();
        layers.set(LayerId::Trails, false);
        layers.set(LayerId::Endpoints, true);
        layers.set(LayerId::Field, true);
        layers.set(LayerId::Logp, true);
        let settings = Settings {
            data: DataSettings {
                dataset: Dataset::Spirals,
                custom: None,
                source: Dataset::Circles,
                custom_source: None,
                seed: 7,
            },
            model: ModelSettings {
                hidden: 64,
                depth: 3,
                t_dim: 32,
                t_times_1000: true,
                conditional: true,
            },
            training: TrainingSettings {
                path: super::super::PathSettings {
                    kind: PathKind::Ve,
                    rf_sigma_min: 1e-5,
                    ve_sigma: [0.02, 20.0],
                    ve_precondition: false,
                },
                logit_normal: false,
                ln_mean: 0.5,
                ln_std: 0.7,
                batch: 333,
                ot: true,
                p_drop: 0.25,
            },
            optim: OptimSettings {
                lr: 3e-4,
                ema: 0.99,
                clip: 0.0,
                weight_decay: 0.01,
            },
            sampling: SamplingSettings {
                solver: Solver::Rk4,
                steps: 9,
                rescale_t: 3.0,
                cfg_scale: 2.5,
                particles: 12345,
                class: Some(2),
                ema: false,
            },
            view: ViewSettings {
                layers,
                field_class: Some(1),
            },
            compute: Compute::Cpu,
        };
        let query = settings.to_query();
        let (back, actions) = Settings::default()
            .with_query(&format!("#{query}"))
            .expect("our own URL state parses");
        assert_eq!(back, settings);
        assert_eq!(actions, Actions::default());
        for key in Settings::query_keys().iter().filter(|&&k| k != "train") {
            assert!(query.contains(&format!("{key}=")), "{key} is written");
        }
        assert!(
            query.contains("layers=data,particles,endpoints,field,logp"),
            "{query}"
        );
    }

    #[test]
    fn a_partial_query_changes_only_its_keys() {
        let (s, actions) = Settings::default()
            .with_query("train=1&solver=heun&layers=field,density")
            .expect("valid");
        assert_eq!(actions.train, Some(true));
        assert_eq!(s.sampling.solver, Solver::Heun);
        assert!(s.view.layers.contains(LayerId::Field) && s.view.layers.contains(LayerId::Density));
        assert!(
            !s.view.layers.contains(LayerId::Particles),
            "only the listed layers"
        );
        let mut back = s.clone();
        back.sampling.solver = Solver::Euler;
        back.view = Settings::default().view;
        assert_eq!(back, Settings::default());
    }

    #[test]
    fn links_from_before_the_layers_still_work() {
        let (s, _) = Settings::default()
            .with_query("trails=0&endpoints=1")
            .expect("the old keys are read");
        assert!(!s.view.layers.contains(LayerId::Trails));
        assert!(s.view.layers.contains(LayerId::Endpoints));
        assert!(!s.to_query().contains("trails="), "but no longer written");
    }

    #[test]
    fn a_lesson_in_the_address_sets_its_playground_and_the_rest_applies_on_top() {
        let base = Settings {
            compute: Compute::Cpu,
            ..Settings::default()
        };
        let (s, actions) = base.with_query("#lesson=3&solver=rk4").expect("valid");
        assert_eq!(actions.lesson, Some(2));
        assert_eq!(actions.train, Some(true), "the lesson starts training");
        assert_eq!(s.data.dataset, Dataset::EightGaussians, "lesson 3's data");
        assert_eq!(
            s.sampling.solver,
            Solver::Rk4,
            "the address's own key on top"
        );
        assert_eq!(
            s.compute,
            Compute::Cpu,
            "compute is the page's, not the lesson's"
        );
        for bad in ["lesson=0", "lesson=10", "lesson=two"] {
            let err = Settings::default().with_query(bad).expect_err(bad);
            assert!(err.contains("lesson="), "{err}");
        }
    }

    #[test]
    fn an_address_can_open_sections_and_a_second_run() {
        let (_, actions) = Settings::default()
            .with_query("lesson=5&open=lab,compare&second=solver")
            .expect("valid");
        assert_eq!(
            actions.open,
            [crate::app::Section::Lab, crate::app::Section::Compare]
        );
        assert_eq!(actions.second, Some(super::super::Comparison::Solver));
        let err = Settings::default()
            .with_query("open=lab,fridge&second=warp")
            .expect_err("refused");
        assert!(
            err.contains("open=fridge") && err.contains("second=warp"),
            "{err}"
        );
    }

    #[test]
    fn a_malformed_query_is_explained_and_changes_nothing() {
        let err = Settings::default()
            .with_query("solver=heun&path=warp&particles=-3&colour=red&lr=abc&layers=field,fog")
            .expect_err("bad values are refused");
        for part in [
            "path=warp",
            "particles=-3",
            "'colour'",
            "lr=abc",
            "'fog' is not a layer",
        ] {
            assert!(err.contains(part), "{err} names {part}");
        }
        assert!(err.contains("none were applied"));
    }
}

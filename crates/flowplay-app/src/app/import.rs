//! Files taken in: points (a CSV or a picture) that become the data or the source, and
//! weights the particles then flow from. Every failure is one notice in plain words, and the
//! current run is kept.

use std::sync::Arc;

use flowplay_core::data::{Points, parse_points_csv_bytes};
use flowplay_core::flow::{DataSource, FlowModel};
use flowplay_core::path::Path;
use flowplay_core::picture::{PictureOptions, looks_like_picture, points_from_picture};
use flowplay_core::weights;

use super::PlaygroundApp;
use super::state::{PlotMark, Role};
use crate::files::{Incoming, Purpose};
use crate::settings::{CustomData, POOL_SIZE, PathKind, Settings};

/// The most points an imported CSV trains on: more are read, and a random subset of this many
/// is kept, with a notice.
pub(crate) const MAX_IMPORTED_POINTS: usize = 100_000;

impl PlaygroundApp {
    /// Takes in the files that arrived (opened or dropped).
    pub(crate) fn receive_files(&mut self) {
        for item in self.files.inbox.take() {
            let result = item.and_then(|file| self.take_in(&file));
            match result {
                Ok(said) => self.notices.error = Some(said),
                Err(why) => self.notices.error = Some(why),
            }
        }
    }

    /// One file, by what it was opened for (or, dropped, by its name): points become the data
    /// or the source, as the Files panel's "use as" says. Returns what is said.
    pub(crate) fn take_in(&mut self, file: &Incoming) -> Result<String, String> {
        let lower = file.name.to_ascii_lowercase();
        let is_picture = looks_like_picture(&file.bytes)
            || [".png", ".jpg", ".jpeg"].iter().any(|e| lower.ends_with(e));
        let purpose = match file.purpose {
            Purpose::Dropped if lower.ends_with(".safetensors") => Purpose::Weights,
            Purpose::Dropped
                if is_picture || lower.ends_with(".csv") || lower.ends_with(".txt") =>
            {
                Purpose::Data
            }
            Purpose::Dropped => {
                return Err(format!(
                    "{}: flowplay takes points as .csv or a .png/.jpg picture, and weights as \
                     .safetensors.",
                    file.name
                ));
            }
            p => p,
        };
        let role = self.files.role;
        match purpose {
            Purpose::Weights => self.import_weights(&file.name, &file.bytes),
            _ if is_picture => self.import_picture(&file.name, &file.bytes, role),
            _ => self.import_points(&file.name, &file.bytes, role),
        }
    }

    /// Trains on the points of a CSV from now on, as the data or the source (see
    /// [`Self::use_points`]).
    pub(crate) fn import_points(
        &mut self,
        name: &str,
        bytes: &[u8],
        role: Role,
    ) -> Result<String, String> {
        let points =
            parse_points_csv_bytes(bytes, name).map_err(|e| format!("{e}. {}", role.kept()))?;
        self.use_points(name, points, role)
    }

    /// Draws points from a picture's density (darkness or brightness, as the Files panel says)
    /// and trains on them, as the data or the source.
    pub(crate) fn import_picture(
        &mut self,
        name: &str,
        bytes: &[u8],
        role: Role,
    ) -> Result<String, String> {
        let options = PictureOptions {
            density: self.files.density,
            n: POOL_SIZE,
            seed: self.settings.data.seed,
            ..PictureOptions::default()
        };
        let points = points_from_picture(bytes, name, &options)
            .map_err(|e| format!("{e}. {}", role.kept()))?;
        self.use_points(name, points, role)
    }

    /// Trains on `points` (named `name`) from now on, as the data or the source: the weights
    /// carry on (the flow morphs to the new data, or from the new source), unless a
    /// conditional model meets another number of classes (then a new model, one Undo away).
    /// More than [`MAX_IMPORTED_POINTS`] are subsampled; a source's labels are not used.
    pub(crate) fn use_points(
        &mut self,
        name: &str,
        mut points: Points,
        role: Role,
    ) -> Result<String, String> {
        let read = points.len();
        if read > MAX_IMPORTED_POINTS {
            points = subsample(&points, MAX_IMPORTED_POINTS, self.settings.data.seed);
        }
        let kept = points.len();
        let capped = if kept < read {
            format!(" ({read} read; {kept} of them, drawn at random, are used)")
        } else {
            String::new()
        };
        if role == Role::Source {
            return self.use_source(name, Points::unlabelled(points.xy), &capped);
        }
        let custom = CustomData {
            name: name.to_string(),
            points: Arc::new(points),
        };
        let mut settings = self.settings.clone();
        settings.data.custom = Some(custom.clone());
        // Labelled points train a class-conditional model.
        settings.model.conditional = custom.points.num_classes > 1;
        let classes_change = settings.classes() != self.settings.classes();
        if classes_change {
            self.rebuild(settings);
            if self.settings.data.custom.as_ref() != Some(&custom) {
                return Err(self.notices.error.clone().unwrap_or_default());
            }
            return Ok(format!(
                "Training on your {kept} points from {name}{capped}: a new model, since the \
                 number of classes changed (the previous one is one Undo away)."
            ));
        }
        self.engine
            .set_pools(
                (settings.data.source_of_data(), (*custom.points).clone()),
                (
                    settings.data.source_of_source(),
                    settings.data.source_points(),
                ),
            )
            .map_err(|e| format!("{name}: {e}. {}", role.kept()))?;
        self.settings = settings;
        self.data_changed(&format!("data: {name}"));
        Ok(format!(
            "Training on your {kept} points from {name}{capped}; the weights carry on, so the \
             flow morphs from the old data to the new. A link cannot carry your points."
        ))
    }

    /// The particles start from `points` from now on (the source p₀), the weights carrying on.
    fn use_source(&mut self, name: &str, points: Points, capped: &str) -> Result<String, String> {
        let kept = points.len();
        let mut settings = self.settings.clone();
        settings.data.custom_source = Some(CustomData {
            name: name.to_string(),
            points: Arc::new(points),
        });
        self.engine
            .set_pools(
                (settings.data.source_of_data(), self.engine.data().clone()),
                (
                    settings.data.source_of_source(),
                    settings.data.source_points(),
                ),
            )
            .map_err(|e| format!("{name}: {e}. {}", Role::Source.kept()))?;
        self.settings = settings;
        self.data_changed(&format!("source: {name}"));
        Ok(format!(
            "The particles now start from your {kept} points from {name}{capped}, and the flow \
             learns to carry them to the data; the weights carry on. The likelihood needs an \
             N(0, I) source, so it is not shown. A link cannot carry your points."
        ))
    }

    /// The data changed under the running model: the drawn data, the view, the plots' mark,
    /// the evaluation and the particles follow.
    fn data_changed(&mut self, mark: &str) {
        self.data = Self::data_view(&self.settings, &self.engine);
        self.canvas.fit = Self::fit_view(&self.data, &self.engine);
        self.canvas.view = self.canvas.fit;
        self.curves.marks.push(PlotMark {
            step: self.engine.steps_done() as f64,
            label: mark.to_string(),
        });
        self.eval.last = None;
        self.eval.evaluated_step = None;
        self.layers.views.pairs = None;
        self.layers.views.pairs_at = None;
        self.flow.stale = true;
        self.edits.hash_dirty = true;
    }

    /// Flows from the weights in a safetensors file: a new model of the file's shape and path
    /// (the current one stays one Undo away), with the file's weights.
    pub(crate) fn import_weights(&mut self, name: &str, bytes: &[u8]) -> Result<String, String> {
        let keep = ". The current model is kept.";
        let rms = self.engine.data().rms();
        let fallback = flowplay_core::flow::ModelSpec {
            mlp: self.settings.train_config(rms).mlp,
            path: self.engine.config().path,
            ..weights::default_spec()
        };
        let loaded =
            weights::from_safetensors(bytes, name, &fallback).map_err(|e| format!("{e}{keep}"))?;
        let model = loaded.model;
        let settings = self
            .settings_for(&model)
            .map_err(|why| format!("{name}: {why}{keep}"))?;
        let before = self.settings.clone();
        self.rebuild(settings);
        if self.engine.config().mlp != model.spec.mlp {
            // The rebuild was refused (its notice says why).
            return Err(self.notices.error.clone().unwrap_or_default());
        }
        if let Err(e) = self.engine.set_params(&model.params) {
            self.undo();
            return Err(format!("{name}: {e}{keep}"));
        }
        let mlp = model.spec.mlp;
        let origin = if loaded.spec_recorded {
            format!("trained by flowplay on {}", model.spec.dataset.name())
        } else {
            "saved from PyTorch; its path and time scale are the ones set here".to_string()
        };
        let what = before.model_change(&self.settings);
        Ok(format!(
            "Loaded {name}: hidden {}, depth {}, t-dim {}, {}, {origin}. The particles flow from \
             it; Train trains it further ({what}; the previous model is one Undo away).",
            mlp.hidden,
            mlp.depth,
            mlp.t_dim,
            model.spec.path.name()
        ))
    }

    /// The settings that build `model`'s network and path, or why the app cannot.
    fn settings_for(&self, model: &FlowModel) -> Result<Settings, String> {
        let spec = &model.spec;
        let mut s = self.settings.clone();
        s.model.hidden = spec.mlp.hidden;
        s.model.depth = spec.mlp.depth;
        s.model.t_dim = spec.mlp.t_dim;
        #[allow(clippy::float_cmp, reason = "the two scales the app offers, exactly")]
        {
            s.model.t_times_1000 = match spec.mlp.t_scale {
                1.0 => false,
                1000.0 => true,
                other => {
                    return Err(format!(
                        "a time scale of {other}; the app feeds the network t or t·1000"
                    ));
                }
            };
        }
        if spec.mlp.hidden > 512 || spec.mlp.depth > 6 {
            return Err(format!(
                "a network of hidden {} and depth {} is larger than the app trains (512, 6)",
                spec.mlp.hidden, spec.mlp.depth
            ));
        }
        match &spec.source {
            DataSource::Builtin(d) => {
                s.data.source = *d;
                s.data.custom_source = None;
            }
            // The user's source points are here: the model flows from them.
            DataSource::Custom { .. } if self.settings.data.custom_source.is_some() => {}
            DataSource::Custom { name } => {
                return Err(format!(
                    "it was trained to start from the points of '{name}'; import those first \
                     (Files, use as: source), then these weights"
                ));
            }
        }
        if let DataSource::Builtin(d) = &spec.dataset
            && self.settings.data.custom.is_none()
        {
            s.data.dataset = *d;
        }
        let classes = spec.mlp.num_classes;
        s.model.conditional = classes > 0;
        if classes > 0 && s.data.num_classes() != classes {
            return Err(format!(
                "a network for {classes} classes, and the data here has {}",
                s.data.num_classes()
            ));
        }
        match spec.path {
            Path::RectifiedFlow { sigma_min } => {
                s.training.path.kind = PathKind::RectifiedFlow;
                s.training.path.rf_sigma_min = sigma_min;
            }
            Path::VpCosine => s.training.path.kind = PathKind::VpCosine,
            Path::Ve {
                sigma_min,
                sigma_max,
                sigma_data,
            } => {
                s.training.path.kind = PathKind::Ve;
                s.training.path.ve_sigma = [sigma_min, sigma_max];
                s.training.path.ve_precondition = sigma_data.is_some();
            }
        }
        Ok(s)
    }
}

/// `n` of `points` drawn at random without repeats (a partial Fisher-Yates shuffle).
fn subsample(points: &Points, n: usize, seed: u64) -> Points {
    let mut rng = flowplay_core::rng::Rng::with_domain(seed, "import-subsample");
    let mut order: Vec<usize> = (0..points.len()).collect();
    for i in 0..n.min(order.len()) {
        let j = i + rng.below(order.len() - i);
        order.swap(i, j);
    }
    order.truncate(n);
    let xy = order.iter().map(|&i| points.xy[i]).collect();
    let labels = points
        .labels
        .as_ref()
        .map(|l| order.iter().map(|&i| l[i]).collect());
    Points::with_labels(xy, labels).unwrap_or_else(|_| points.clone())
}

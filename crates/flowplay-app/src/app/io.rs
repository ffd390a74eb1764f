//! The one place files are taken in and results sent out: points that become the data, weights
//! the particles then flow from, and the exports. Every failure is one notice in plain words, and
//! the current run is kept.

use std::sync::Arc;

use flowplay_core::data::{Points, parse_points_csv_bytes, points_to_csv};
use flowplay_core::flow::{DataSource, FlowModel};
use flowplay_core::path::Path;
use flowplay_core::sampler::trajectories_to_csv;
use flowplay_core::weights;

use super::PlaygroundApp;
use super::state::PlotMark;
use crate::canvas::View;
use crate::command::Export;
use crate::engine::particle_record;
use crate::files::{Incoming, Purpose};
use crate::settings::{CustomData, PathKind, Settings};

/// The most points an imported CSV trains on: more are read, and a random subset of this many
/// is kept, with a notice.
pub(crate) const MAX_IMPORTED_POINTS: usize = 100_000;
/// The most points the brush paints.
pub(crate) const MAX_DRAWN_POINTS: usize = 20_000;
/// The fewest painted points the flow trains on.
pub(crate) const MIN_DRAWN_POINTS: usize = 8;
/// The most particles an export of samples or trajectories integrates (on the CPU, from the
/// drawn weights).
pub(crate) const MAX_EXPORTED_PARTICLES: usize = 20_000;

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

    /// One file, by what it was opened for (or, dropped, by its name). Returns what is said.
    pub(crate) fn take_in(&mut self, file: &Incoming) -> Result<String, String> {
        let lower = file.name.to_ascii_lowercase();
        let purpose = match file.purpose {
            Purpose::Dropped if lower.ends_with(".safetensors") => Purpose::Weights,
            Purpose::Dropped if lower.ends_with(".csv") || lower.ends_with(".txt") => Purpose::Data,
            Purpose::Dropped => {
                return Err(format!(
                    "{}: flowplay takes points as .csv and weights as .safetensors.",
                    file.name
                ));
            }
            p => p,
        };
        match purpose {
            Purpose::Weights => self.import_weights(&file.name, &file.bytes),
            _ => self.import_points(&file.name, &file.bytes),
        }
    }

    /// Trains on the points of a CSV from now on (see [`Self::use_points`]).
    pub(crate) fn import_points(&mut self, name: &str, bytes: &[u8]) -> Result<String, String> {
        let points = parse_points_csv_bytes(bytes, name)
            .map_err(|e| format!("{e}. The current data and model are kept."))?;
        self.use_points(name, points)
    }

    /// Trains on `points` (named `name`) from now on: the weights carry on (the flow morphs to
    /// the new data), unless a conditional model meets another number of classes (then a new
    /// model, one Undo away). More than [`MAX_IMPORTED_POINTS`] are subsampled.
    pub(crate) fn use_points(&mut self, name: &str, mut points: Points) -> Result<String, String> {
        let read = points.len();
        if read > MAX_IMPORTED_POINTS {
            points = subsample(&points, MAX_IMPORTED_POINTS, self.settings.data.seed);
        }
        let kept = points.len();
        let custom = CustomData {
            name: name.to_string(),
            points: Arc::new(points),
        };
        let mut settings = self.settings.clone();
        settings.data.custom = Some(custom.clone());
        // Labelled points train a class-conditional model.
        settings.model.conditional = custom.points.num_classes > 1;
        let classes_change = settings.classes() != self.settings.classes();
        let capped = if kept < read {
            format!(" ({read} read; {kept} of them, drawn at random, are used)")
        } else {
            String::new()
        };
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
            .set_data(settings.data.source_of_data(), (*custom.points).clone())
            .map_err(|e| format!("{name}: {e}. The current data and model are kept."))?;
        self.settings = settings;
        self.data_changed(&format!("data: {name}"));
        Ok(format!(
            "Training on your {kept} points from {name}{capped}; the weights carry on, so the \
             flow morphs from the old data to the new. A link cannot carry your points."
        ))
    }

    /// One dab of the brush at `at` (world units, radius `radius`): points drawn uniformly in
    /// the disc, or the points in it erased.
    pub(crate) fn paint(&mut self, at: [f32; 2], radius: f32) {
        let drawing = &mut self.drawing;
        if self.brush.erase {
            let r2 = radius * radius;
            let keep: Vec<bool> = drawing
                .xy
                .iter()
                .map(|p| (p[0] - at[0]).powi(2) + (p[1] - at[1]).powi(2) > r2)
                .collect();
            let mut k = keep.iter();
            drawing.xy.retain(|_| *k.next().unwrap_or(&true));
            let mut k = keep.iter();
            drawing.labels.retain(|_| *k.next().unwrap_or(&true));
            return;
        }
        let room = MAX_DRAWN_POINTS.saturating_sub(drawing.xy.len());
        let mut rng = flowplay_core::rng::Rng::with_domain(drawing.dabs, "brush");
        drawing.dabs += 1;
        for _ in 0..self.brush.density.min(room) {
            // Uniform in the disc: the radius as √u.
            let r = radius * rng.uniform().sqrt();
            let angle = std::f32::consts::TAU * rng.uniform();
            drawing
                .xy
                .push([at[0] + r * angle.cos(), at[1] + r * angle.sin()]);
            drawing.labels.push(self.brush.class);
        }
        if room == 0 {
            self.notices.error = Some(format!(
                "The drawing holds at most {MAX_DRAWN_POINTS} points: train on it, or erase some."
            ));
        }
    }

    /// Makes the painted points the data (one class: unlabelled; several: labelled, for a
    /// class-conditional model), or says why not.
    pub(crate) fn use_drawing(&mut self) -> Result<String, String> {
        let drawing = &self.drawing;
        if drawing.xy.len() < MIN_DRAWN_POINTS {
            return Err(format!(
                "The drawing has {} points; paint at least {MIN_DRAWN_POINTS} (turn the brush on \
                 and drag on the canvas). The current data is kept.",
                drawing.xy.len()
            ));
        }
        let used: std::collections::BTreeSet<u32> = drawing.labels.iter().copied().collect();
        let points = if used.len() > 1 {
            // Classes renumbered 0.. in order, so that unused colours leave no empty class.
            let index: std::collections::BTreeMap<u32, u32> = used
                .iter()
                .enumerate()
                .map(|(i, &c)| (c, i as u32))
                .collect();
            let labels = drawing.labels.iter().map(|c| index[c]).collect();
            Points::labelled(drawing.xy.clone(), labels)
        } else {
            Ok(Points::unlabelled(drawing.xy.clone()))
        }
        .map_err(|e| format!("The drawing cannot be used: {e}."))?;
        self.use_points("your drawing", points)
    }

    /// The data changed under the running model: the drawn data, the view, the plots' mark,
    /// the evaluation and the particles follow.
    fn data_changed(&mut self, mark: &str) {
        self.data = Self::data_view(&self.settings, &self.engine);
        self.canvas.fit = View::fit(
            self.data.shown.iter().map(|d| d.0),
            self.engine.config().path.prior_scale(),
        );
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
            DataSource::Builtin(d) => s.data.source = *d,
            DataSource::Custom { name } => {
                return Err(format!(
                    "it was trained to start from the points of '{name}', which the app does \
                     not have"
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

    /// Goes on with the export under way: done at once on the CPU; on the GPU once the
    /// weights are back (a later frame).
    pub(crate) fn continue_export(&mut self) {
        let Some(export) = self.files.exporting else {
            return;
        };
        let ema = match export {
            Export::Weights { ema } => ema,
            Export::Samples | Export::Trajectories => self.settings.sampling.ema,
        };
        let model = match self.engine.fetch_model(ema) {
            Ok(Some(model)) => model,
            Ok(None) => return,
            Err(e) => {
                self.files.exporting = None;
                self.notices.error = Some(format!("Nothing was saved: {e}."));
                return;
            }
        };
        self.files.exporting = None;
        let saved = self
            .export_bytes(export, &model)
            .and_then(|(name, bytes, mime)| {
                crate::files::save(&name, &bytes, mime).map(|place| (place, name))
            });
        self.notices.error = Some(match saved {
            Ok((Some(place), _)) => format!("Saved {place}."),
            Ok((None, name)) => format!("{name} was not saved (cancelled)."),
            Err(why) => format!("Nothing was saved: {why}"),
        });
    }

    /// The file an export writes: its name, bytes and type.
    pub(crate) fn export_bytes(
        &mut self,
        export: Export,
        model: &FlowModel,
    ) -> Result<(String, Vec<u8>, &'static str), String> {
        let data = self.settings.data.name();
        // An imported file's name without its extension: "ring.csv" gives "ring".
        let data = std::path::Path::new(&data)
            .file_stem()
            .map_or(data.clone(), |s| s.to_string_lossy().into_owned());
        let stem = format!(
            "flowplay-{}-step{}",
            data.replace(['/', '\\', ' ', '.'], "_"),
            self.engine.steps_done()
        );
        if let Export::Weights { ema } = export {
            let name = format!("{stem}{}.safetensors", if ema { "-ema" } else { "" });
            return Ok((
                name,
                weights::to_safetensors(model),
                "application/octet-stream",
            ));
        }
        // The drawn particles' request, integrated on the CPU from the same weights and start.
        let mut request = self.flow_request();
        request.n = request.n.min(MAX_EXPORTED_PARTICLES);
        if let Some(labels) = &mut request.labels {
            labels.truncate(request.n);
        }
        let trajectories = export == Export::Trajectories;
        request.record = particle_record(trajectories);
        request.record.positions = trajectories;
        let out = model
            .sample(&request, None)
            .map_err(|e| format!("the particles could not be integrated: {e}"))?;
        if trajectories {
            let csv = trajectories_to_csv(&out.trajectories);
            return Ok((
                format!("{stem}-trajectories.csv"),
                csv.into_bytes(),
                "text/csv",
            ));
        }
        let points = Points::with_labels(out.x, request.labels)
            .map_err(|e| format!("the samples could not be written: {e}"))?;
        Ok((
            format!("{stem}-samples.csv"),
            points_to_csv(&points).into_bytes(),
            "text/csv",
        ))
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

//! Results sent out: weights as safetensors, the particles' samples and trajectories as CSV
//! (pictures and videos of the canvas are [`super::capture`]'s).

use flowplay_core::data::{Points, points_to_csv};
use flowplay_core::flow::FlowModel;
use flowplay_core::sampler::trajectories_to_csv;
use flowplay_core::weights;

use super::PlaygroundApp;
use crate::command::Export;
use crate::engine::particle_record;

/// The most particles an export of samples or trajectories integrates (on the CPU, from the
/// drawn weights).
pub(crate) const MAX_EXPORTED_PARTICLES: usize = 20_000;

impl PlaygroundApp {
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

    /// The start of an export's file name: "flowplay-moons-step1200".
    pub(crate) fn export_stem(&self) -> String {
        let data = self.settings.data.name();
        // An imported file's name without its extension: "ring.csv" gives "ring".
        let data = std::path::Path::new(&data)
            .file_stem()
            .map_or(data.clone(), |s| s.to_string_lossy().into_owned());
        format!(
            "flowplay-{}-step{}",
            data.replace(['/', '\\', ' ', '.'], "_"),
            self.engine.steps_done()
        )
    }

    /// The file an export writes: its name, bytes and type.
    pub(crate) fn export_bytes(
        &mut self,
        export: Export,
        model: &FlowModel,
    ) -> Result<(String, Vec<u8>, &'static str), String> {
        let stem = self.export_stem();
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
            .sample(&request, self.engine.source_pool())
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

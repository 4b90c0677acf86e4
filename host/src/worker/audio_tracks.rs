//! Alternate audio, as a job step: each output's selection of the input's audio tracks
//! (`"audio": "all"` or languages) is matched against what the probe found, and the
//! tracks it names are written into its plan for the engine (a package's alternate
//! renditions, a file's audio streams). An output asking for a language the input
//! lacks fails, naming what the input has; the others go on.

use super::Planned;
use super::record::JobRun;
use crate::media::audio_tracks::select;
use crate::types::MediaInfo;

impl JobRun<'_> {
    pub(super) async fn select_audio_tracks(&self, info: &MediaInfo, planned: Vec<Planned>) -> anyhow::Result<Vec<Planned>> {
        let mut kept = Vec::with_capacity(planned.len());
        for mut p in planned {
            let plan = &mut p.target.plan;
            let tracks = match select(&plan.audio_tracks, &info.audio_tracks) {
                Ok(tracks) => tracks,
                Err(err) => {
                    self.fail_output(&p.row, format!("The output's audio tracks cannot be made: {err}.")).await?;
                    continue;
                }
            };
            // A gain is measured on one track: another language would get the wrong one.
            let audio_plans = plan.audio.iter().chain(plan.packaging.iter().flat_map(|s| s.variants.iter().filter_map(|v| v.audio.as_ref())));
            if tracks.len() > 1 && audio_plans.into_iter().any(|a| a.loudness.is_some()) {
                let message = "Loudness normalization of several audio tracks is not supported yet: ask for one language, or drop 'loudness'.";
                self.fail_output(&p.row, message.into()).await?;
                continue;
            }
            if !tracks.is_empty() {
                tracing::info!(output = ?p.row.key, tracks = tracks.len(), "alternate audio tracks");
            }
            plan.tracks = tracks;
            kept.push(p);
        }
        Ok(kept)
    }
}

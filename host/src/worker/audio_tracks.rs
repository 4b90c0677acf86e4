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
            if !tracks.is_empty() {
                tracing::info!(output = ?p.row.key, tracks = tracks.len(), "alternate audio tracks");
            }
            plan.tracks = tracks;
            kept.push(p);
        }
        Ok(kept)
    }
}

//! The output side of a package, whichever way its renditions were encoded: the HLS
//! and DASH muxers every packet goes to, and at the end their trailers, the HLS master
//! playlist and the DASH bandwidths measured on the segments.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::ladder::Layout;
use super::manifest::{master_playlist, overhead, package_files, set_bandwidth};
use super::muxers::{StreamSpec, open_dash, open_hls};
use super::segment_hooks::FileWatch;
use super::{DASH_MANIFEST, HLS_MASTER, Meter, Muxers, Ready, Rendition, lock};
use crate::media::sink::Package;
use crate::media::error::MediaError;
use crate::media::codecs::codec_string;
use crate::types::StreamPlan;

pub(super) struct Packager {
    dir: PathBuf,
    plan: StreamPlan,
    /// Shared by whoever writes packets (each rung's lane, in the encoding packager).
    pub muxers: Arc<Mutex<Muxers>>,
    renditions: Vec<Rendition>,
    variants: Vec<(Option<usize>, Option<usize>)>,
}

impl Packager {
    /// Open the muxers of `plan` under `dir`; `streams` describe the layout's
    /// renditions (video first, then audio).
    pub fn open(plan: &StreamPlan, dir: &Path, layout: &Layout<'_>, streams: &[StreamSpec], ready: Ready) -> Result<Self, MediaError> {
        let nv = layout.video.len();
        if streams.len() != nv + layout.audio.len() {
            return Err(MediaError::Unsupported("the package's streams do not match its renditions".into()));
        }
        let mut renditions = Vec::new();
        for ((name, v), stream) in layout.video.iter().zip(streams) {
            renditions.push(Rendition {
                name: name.clone(),
                codec: codec_string(stream.parameters.id(), stream.extradata()),
                size: Some((v.width, v.height)),
                frame_rate: stream.frame_rate.map(f64::from),
                channels: None,
                language: None,
                title: None,
                group: None,
            });
        }
        for (rung, stream) in layout.audio.iter().zip(&streams[nv..]) {
            renditions.push(Rendition {
                name: rung.name.clone(),
                codec: codec_string(stream.parameters.id(), stream.extradata()),
                size: None,
                frame_rate: None,
                channels: Some(rung.plan.channels),
                language: rung.track.and_then(|t| t.language.clone()),
                title: rung.track.and_then(|t| t.title.clone()),
                group: Some(nv + rung.group),
            });
        }
        // What DASH says of each stream's adaptation set: its language, and which
        // track is the main one (when there are several).
        let tags: Vec<Vec<(&str, String)>> = renditions
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let Some(rung) = i.checked_sub(nv).and_then(|a| layout.audio.get(a)) else { return Vec::new() };
                let mut tags: Vec<(&str, String)> = r.language.iter().map(|l| ("language", l.clone())).collect();
                if let Some(track) = rung.track {
                    let main = layout.audio.first().and_then(|first| first.track).is_some_and(|first| first.stream == track.stream);
                    tags.push(("role", if main { "main" } else { "alternate" }.to_string()));
                }
                tags
            })
            .collect();
        let watch = Arc::new(FileWatch::new(ready));
        let mut hls = Vec::new();
        if let Some(options) = plan.hls {
            for (rendition, stream) in renditions.iter().zip(streams) {
                let rendition_dir = dir.join("hls").join(&rendition.name);
                hls.push(open_hls(&rendition_dir, stream, options.fmp4, plan.segment_duration, &watch)?);
            }
        }
        let dash = if plan.dash { Some(open_dash(&dir.join("dash"), streams, &tags, &layout.dash_sets(), plan.segment_duration, &watch)?) } else { None };
        let muxers = Arc::new(Mutex::new(Muxers {
            hls,
            dash,
            meters: vec![Meter::default(); renditions.len()],
            segment: plan.segment_duration,
            watch,
        }));
        Ok(Packager { dir: dir.to_path_buf(), plan: plan.clone(), muxers, renditions, variants: layout.variants.clone() })
    }

    /// The renditions' directory names, in order.
    pub fn name(&self, rendition: usize) -> &str {
        &self.renditions[rendition].name
    }

    /// Trailers, the HLS master playlist and the DASH bandwidths.
    pub fn close(&self) -> Result<Package, MediaError> {
        let mut muxers = lock(&self.muxers);
        for muxer in muxers.hls.iter_mut() {
            muxer.write_trailer().map_err(MediaError::at("writing an HLS playlist"))?;
        }
        if let Some(dash) = muxers.dash.as_mut() {
            dash.write_trailer().map_err(MediaError::at("writing the DASH manifest"))?;
        }
        muxers.watch.settle();
        let segment = self.plan.segment_duration;
        let hls_dir = self.dir.join("hls");
        let dash_dir = self.dir.join("dash");

        let mut hls_master = None;
        if self.plan.hls.is_some() {
            let rates: Vec<(u64, u64)> = self
                .renditions
                .iter()
                .zip(&muxers.meters)
                .map(|(rendition, meter)| meter.rates(segment, overhead(&hls_dir.join(&rendition.name), meter, |_| true)))
                .collect();
            let text = master_playlist(&self.renditions, &self.variants, &rates, self.plan.hls.is_some_and(|h| h.fmp4));
            let path = hls_dir.join(HLS_MASTER);
            std::fs::write(&path, text).map_err(|e| MediaError::Unsupported(format!("cannot write {}: {e}", path.display())))?;
            hls_master = Some(PathBuf::from("hls").join(HLS_MASTER));
        }
        let mut dash_manifest = None;
        if self.plan.dash {
            let path = dash_dir.join(DASH_MANIFEST);
            let mut mpd = std::fs::read_to_string(&path).map_err(|e| MediaError::Unsupported(format!("cannot read the MPD: {e}")))?;
            for (r, meter) in muxers.meters.iter().enumerate() {
                let prefix = format!("-{r}");
                let factor = overhead(&dash_dir, meter, |name| name.contains(&format!("{prefix}.")) || name.contains(&format!("{prefix}-")));
                let (peak, _) = meter.rates(segment, factor);
                mpd = set_bandwidth(&mpd, r, peak);
            }
            std::fs::write(&path, mpd).map_err(|e| MediaError::Unsupported(format!("cannot write the MPD: {e}")))?;
            dash_manifest = Some(PathBuf::from("dash").join(DASH_MANIFEST));
        }
        drop(muxers);
        Ok(Package { files: package_files(&self.dir)?, hls_master, dash_manifest })
    }
}

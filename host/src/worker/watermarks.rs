//! Watermarks, as a job step: before the encode, every image the outputs' plans draw is
//! fetched once (through the outbound policy, as the input is, and under a byte cap) into
//! the job's work directory, and each overlay is given its file. The engine decodes them
//! there (`media::overlay`).

use std::path::Path;

use super::Planned;
use super::record::JobRun;

/// The most bytes one watermark image may have (and never more than an input).
const MAX_IMAGE_BYTES: u64 = 16 << 20;

impl JobRun<'_> {
    /// Fetch the watermark images of `planned` into `work`; an output whose image could
    /// not be fetched is failed, naming it; the others go on.
    pub(super) async fn fetch_watermarks(&self, work: &Path, planned: Vec<Planned>) -> anyhow::Result<Vec<Planned>> {
        let mut urls: Vec<&str> = Vec::new();
        for p in &planned {
            for o in p.target.plan.video_plans().flat_map(|v| v.overlays.iter()) {
                if !urls.contains(&o.url.as_str()) {
                    urls.push(&o.url);
                }
            }
        }
        if urls.is_empty() {
            return Ok(planned);
        }
        let max_bytes = MAX_IMAGE_BYTES.min(self.worker.config.limits.max_input_bytes);
        let mut fetched = Vec::with_capacity(urls.len());
        for (i, url) in urls.iter().enumerate() {
            let dest = work.join(format!("watermark-{i}"));
            let result = crate::storage::fetch_http(&self.worker.http, url, &dest, max_bytes).await;
            fetched.push((url.to_string(), result.map(|_| dest).map_err(|e| e.to_string())));
        }
        tracing::info!(images = fetched.len(), "watermarks fetched");
        let mut kept = Vec::with_capacity(planned.len());
        for mut p in planned {
            let mut failed = None;
            for overlay in p.target.plan.video_plans_mut().flat_map(|v| v.overlays.iter_mut()) {
                match fetched.iter().find(|(url, _)| *url == overlay.url).map(|(_, r)| r) {
                    Some(Ok(file)) => overlay.file = Some(file.clone()),
                    Some(Err(why)) => failed = Some(why.clone()),
                    None => failed = Some("it was not fetched".to_string()),
                }
            }
            match failed {
                Some(why) => self.fail_output(&p.row, format!("The watermark image could not be fetched: {why}")).await?,
                None => kept.push(p),
            }
        }
        Ok(kept)
    }
}

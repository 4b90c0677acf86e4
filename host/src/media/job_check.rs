//! The check of a job's plans together, once each has passed `plan_check`: what all its
//! outputs cost at once, against the operator's job limits. Each output may be within
//! its own bounds while the job is not: fifty thumbnail outputs of `max_pictures` each,
//! or outputs whose memory only adds up past `max_job_memory_mib`.

use super::memory::memory_breakdown;
use crate::config::Limits;
use crate::types::{MediaInfo, OutputPlan};

const MIB: u64 = 1 << 20;

/// Why a job's plans cannot run together.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JobRefusal {
    #[error(
        "The job's outputs need an estimated {estimate_mib} MiB of memory together ({parts}){}, above this server's limit of \
         {limit_mib} MiB; the operator sets it with [limits] max_job_memory_mib or COPRA_LIMITS_MAX_JOB_MEMORY_MIB.",
        if *any_input { " whatever the input, for even the smallest one" } else { "" }
    )]
    Memory { estimate_mib: u64, limit_mib: u64, parts: String, any_input: bool },
    #[error(
        "The job's outputs take {pictures} pictures together{}, above this server's limit of {limit} per job; the operator \
         sets it with [limits] max_job_pictures or COPRA_LIMITS_MAX_JOB_PICTURES.",
        if *any_input { " whatever the input, for even the shortest one" } else { "" }
    )]
    Pictures { pictures: u64, limit: u64, any_input: bool },
}

/// Check the plans of a job's outputs (each with its key), made for the input `info`,
/// against `max_job_pictures` and `max_job_memory_mib`. With `any_input`, `info` is the
/// smallest input there is and the message says the job cannot run for any.
pub fn check_job(info: &MediaInfo, outputs: &[(&str, &OutputPlan)], limits: &Limits, any_input: bool) -> Result<(), JobRefusal> {
    let pictures: u64 = outputs.iter().filter_map(|(_, plan)| plan.image.as_ref()).map(|image| image.times.len() as u64).sum();
    if pictures > limits.max_job_pictures as u64 {
        return Err(JobRefusal::Pictures { pictures, limit: limits.max_job_pictures as u64, any_input });
    }
    let plans: Vec<OutputPlan> = outputs.iter().map(|(_, plan)| (*plan).clone()).collect();
    let estimate = memory_breakdown(info, &plans);
    let total = estimate.total();
    if total <= limits.max_job_memory {
        return Ok(());
    }
    // The largest parts first, at most four, so the message says what to cut.
    let mut parts: Vec<(String, u64)> = outputs.iter().zip(&estimate.outputs).map(|((key, _), bytes)| (format!("output '{key}'"), *bytes)).collect();
    parts.push(("decoding the input".into(), estimate.decode));
    parts.sort_by_key(|part| std::cmp::Reverse(part.1));
    let shown: Vec<String> = parts.iter().take(4).map(|(what, bytes)| format!("{what} {} MiB", bytes.div_ceil(MIB))).collect();
    Err(JobRefusal::Memory { estimate_mib: total.div_ceil(MIB), limit_mib: limits.max_job_memory / MIB, parts: shown.join(", "), any_input })
}

/// The smallest input there is, to plan a job's outputs with at submit: what its plans
/// cost is the least the job can cost, so a job refused for it is refused for any.
pub fn smallest_input() -> MediaInfo {
    MediaInfo {
        width: 16,
        height: 16,
        duration: 1.0,
        fps: 25.0,
        has_video: true,
        has_audio: true,
        video_codec: "h264".into(),
        audio_codec: "aac".into(),
        pix_fmt: "yuv420p".into(),
        sample_rate: 48_000,
        channels: 2,
        format_name: "mov,mp4,m4a,3gp,3g2,mj2".into(),
        ..MediaInfo::default()
    }
}

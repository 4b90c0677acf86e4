//! The checks of each plugin world: what is called, with which valid and invalid inputs,
//! and what a conforming answer is.

use std::sync::Arc;

use serde_json::json;

use super::{Report, fixtures, judged, timed, twice};
use crate::config::Limits;
use crate::plugins::{PluginError, Plugins};
use crate::storage::StorageTarget;
use crate::types::{LadderProbe, LadderStep, MediaInfo, OutputPlan, OutputType, QualityProbe, QualityStep};

/// The params a package is checked with when it refuses none.
const PACKAGE: &str = r#"{"hls":{"path":"/hls"}}"#;

/// Every format it provides is checked (bare, and with a part no plugin could mean), and
/// planned for every fixture input; a plan must pass the host's own plan check.
pub(super) async fn format(report: &mut Report, plugins: &Arc<Plugins>, provides: &[String]) {
    let limits = Limits::default();
    for format in provides {
        let (ms, checked) = timed(plugins.format_check(format, "{}")).await;
        let kind = match report.call(format!("check {format}"), ms, checked, |t: &OutputType| t.as_str().to_string()) {
            Some(kind) => kind,
            // A package needs somewhere to go (Coconut's `hls` or `dash`).
            None => {
                let (ms, checked) = timed(plugins.format_check(format, PACKAGE)).await;
                let Some(kind) = report.call(format!("check {format} {PACKAGE}"), ms, checked, |t: &OutputType| t.as_str().to_string())
                else {
                    continue;
                };
                kind
            }
        };
        let nonsense = format!("{format}:zz_not_a_part_zz");
        let (ms, refused) = timed(plugins.format_check(&nonsense, "{}")).await;
        match refused {
            Err(err @ PluginError::Rejected { .. }) => {
                let (pass, detail) = judged(&err);
                report.row(format!("check {nonsense}"), pass, ms, detail);
            }
            Err(err) => report.row(format!("check {nonsense}"), false, ms, judged(&err).1),
            Ok(_) => report.row(format!("check {nonsense}"), false, ms, "accepted a format part it cannot mean: it must be refused with format_not_valid"),
        }
        // Pictures are planned with a path the way a job gives them; packages also with a
        // ladder planned from the content, as Coconut's `variants` may ask.
        let params = match kind {
            OutputType::Image => vec![json!({"path": "thumb_%.2d.jpg"})],
            OutputType::Httpstream => vec![json!({"hls": {"path": "/hls"}}), json!({"hls": {"path": "/hls"}, "variants": "auto"})],
            _ => vec![json!({})],
        };
        // The first params are the format's plain use, named by the format alone.
        for (i, params) in params.iter().map(|p| p.to_string()).enumerate() {
            for (fixture, input) in fixtures() {
                let check = if i == 0 { format!("plan {format} for {fixture}") } else { format!("plan {format} {params} for {fixture}") };
                let Some(plan) = twice(report, check.clone(), || plugins.format_plan(format, &params, &input)).await else { continue };
                if let Err(why) = crate::media::check_plan(&plan, &limits) {
                    report.row(format!("{check}: host's plan check"), false, 0, why.to_string());
                } else if plan.target_vmaf.is_some() && plan.packaging.is_some() {
                    ladder(report, plugins, format, &params, &input, &plan, &check).await;
                } else if plan.target_vmaf.is_some() {
                    search(report, plugins, format, &params, &input, &plan, &check).await;
                }
            }
        }
    }
}

/// A package planned from the content: its ladder is planned against stand-in
/// measurements (VMAF falling 1.5 a setting step and with a smaller picture; bits
/// halving every 6 steps and with the pixels) and must stay within the host's bounds,
/// every probe and the ladder passing the plan check.
async fn ladder(report: &mut Report, plugins: &Arc<Plugins>, format: &str, params: &str, input: &MediaInfo, plan: &OutputPlan, check: &str) {
    let limits = Limits::default();
    let window = crate::types::TimeRange { offset: 0.0, duration: Some(2.0) };
    let mut probes: Vec<LadderProbe> = Vec::new();
    for round in 0..=crate::media::MAX_LADDER_ROUNDS {
        let name = format!("{check}: plan-ladder round {}", round + 1);
        let (ms, step) = timed(plugins.format_plan_ladder(format, params, input, &probes)).await;
        let step = match step {
            Ok(step) => step,
            Err(err) => return report.row(name, false, ms, judged(&err).1),
        };
        if let Err(why) = crate::media::check_ladder_step(&step, round) {
            return report.row(name, false, ms, format!("refused by the host: {why}"));
        }
        match step {
            LadderStep::Done(variants) => {
                let rungs: Vec<String> = variants.iter().map(|v| v.name.clone()).collect();
                let verdict = crate::media::plan_with_ladder(plan.clone(), variants, &limits)
                    .map(|_| format!("settled on {rungs:?} after {} probes", probes.len()));
                return report.row(name, verdict.is_ok(), ms, verdict.unwrap_or_else(|why| format!("settled on a ladder the host refuses: {why}")));
            }
            LadderStep::Probe(videos) => {
                if let Some(why) = videos.iter().find_map(|v| crate::media::ladder_probe_plan(v, &window, &limits).err()) {
                    return report.row(name, false, ms, format!("asked for a probe the host refuses: {why}"));
                }
                report.row(name, true, ms, format!("asked for {} probes", videos.len()));
                probes.extend(videos.iter().map(|v| {
                    let (crf, scale) = (f64::from(v.crf.unwrap_or_default()), f64::from(v.width.min(v.height)) / 1080.0);
                    let vmaf = (100.0 - 1.5 * crf - (1.0 - scale).max(0.0) * 30.0).clamp(0.0, 100.0);
                    let kbps = 4000.0 * scale * scale * 0.5f64.powf((crf - 23.0) / 6.0);
                    LadderProbe { width: v.width, height: v.height, crf: crf as f32, vmaf, bitrate_kbps: kbps.max(1.0) as u32 }
                }));
            }
        }
    }
}

/// A plan with a target quality: its search is run against stand-in measurements (VMAF
/// falling 1.5 a setting step from 100) and must stay within the host's bounds and
/// settle on a setting the plan check accepts.
async fn search(report: &mut Report, plugins: &Arc<Plugins>, format: &str, params: &str, input: &MediaInfo, plan: &OutputPlan, check: &str) {
    let limits = Limits::default();
    let at = |crf: f32| crate::media::plan_at_setting(plan.clone(), crf, &limits).map(|_| ());
    let mut probes: Vec<QualityProbe> = Vec::new();
    for round in 0..=crate::media::MAX_SEARCH_ROUNDS {
        let name = format!("{check}: search-quality round {}", round + 1);
        let (ms, step) = timed(plugins.format_search_quality(format, params, input, &probes)).await;
        let step = match step {
            Ok(step) => step,
            Err(err) => return report.row(name, false, ms, judged(&err).1),
        };
        if let Err(why) = crate::media::check_search_step(&step, round) {
            return report.row(name, false, ms, format!("refused by the host: {why}"));
        }
        match step {
            QualityStep::Done(crf) => {
                let verdict = at(crf).map(|()| format!("settled on {crf} after {} probes", probes.len()));
                return report.row(name, verdict.is_ok(), ms, verdict.unwrap_or_else(|why| format!("settled on a setting the host refuses: {why}")));
            }
            QualityStep::Probe(settings) => {
                if let Some(why) = settings.iter().find_map(|crf| at(*crf).err()) {
                    return report.row(name, false, ms, format!("asked for a setting the host refuses: {why}"));
                }
                report.row(name, true, ms, format!("asked for {settings:?}"));
                let stand_in = |crf: f32| (100.0 - 1.5 * f64::from(crf)).clamp(0.0, 100.0);
                probes.extend(settings.iter().map(|crf| QualityProbe { crf: *crf, vmaf: stand_in(*crf), bitrate_kbps: 1000 }));
            }
        }
    }
}

/// Every service it provides is resolved from a minimal and from a malformed storage
/// block (a refusal must say why; a trap never), and asked for an object key.
pub(super) async fn storage(report: &mut Report, plugins: &Arc<Plugins>, provides: &[String]) {
    for service in provides {
        // A block with the fields most services use (S3-style credentials, a bucket, a
        // region), then the bare minimum: either may be refused, with a reason.
        let typical = json!({
            "service": service, "path": "/conformance", "bucket": "conformance", "region": "us-east-1",
            "credentials": {"access_key_id": "AKIACONFORMANCE", "secret_access_key": "conformance-secret"},
        })
        .to_string();
        let minimal = json!({"service": service, "path": "/conformance"}).to_string();
        let typical_target = twice(report, format!("resolve {service} (typical block)"), || plugins.storage_resolve(service, &typical)).await;
        let minimal_target = twice(report, format!("resolve {service} (minimal block)"), || plugins.storage_resolve(service, &minimal)).await;
        let (resolved, minimal) = match (typical_target, minimal_target) {
            (Some(t), _) => (Some(t), typical),
            (None, m) => (m, minimal),
        };
        let malformed = json!({"service": service, "bucket": 42, "region": {"x": []}, "credentials": "nope", "path": 7}).to_string();
        let (ms, answer) = timed(plugins.storage_resolve(service, &malformed)).await;
        report.call(format!("resolve {service} (malformed block)"), ms, answer, |t: &StorageTarget| format!("{t:?}"));
        if resolved.is_some() {
            let key = twice(report, format!("object-key {service}"), || plugins.storage_object_key(service, &minimal, "/videos/720p/video.mp4")).await;
            if let Some(key) = key
                && let Err(err) = crate::object_key::object_key(&key)
            {
                report.row(format!("object-key {service}: host's key check"), false, 0, err.to_string());
            }
            // A path climbing out of the root: the plugin may refuse it, or the host will.
            let (ms, climbed) = timed(plugins.storage_object_key(service, &minimal, "../../etc/passwd")).await;
            let (pass, detail) = match climbed {
                Ok(key) => (false, format!("answered the key '{key}' for a path leaving the storage root")),
                Err(PluginError::Refused { message, .. }) => (true, format!("refused by the host: {message}")),
                Err(err) => judged(&err),
            };
            report.row(format!("object-key {service} (climbing path)"), pass, ms, detail);
        }
    }
}

/// Every notification type is checked with a usable and an unusable configuration, and
/// asked which hosts a delivery would reach. Nothing is delivered.
pub(super) async fn notifier(report: &mut Report, plugins: &Arc<Plugins>, provides: &[String]) {
    for kind in provides {
        let good = json!({"type": kind, "url": "https://hooks.example.com/copra", "events": true}).to_string();
        twice(report, format!("check {kind} (with a url)"), || plugins.notifier_check(kind, &good)).await;
        twice(report, format!("hosts {kind}"), || plugins.notifier_hosts(kind, &good)).await;
        let bad = json!({"type": kind, "url": 12, "events": "sometimes"}).to_string();
        let (ms, answer) = timed(plugins.notifier_check(kind, &bad)).await;
        let (pass, detail) = match answer {
            Ok(()) => (false, "accepted a configuration whose url is a number: it must be refused with notification_not_valid".into()),
            Err(err) => judged(&err),
        };
        report.row(format!("check {kind} (malformed)"), pass, ms, detail);
    }
}

/// Sample expressions (the Coconut `if` language, the examples', and `--sample`): at
/// least one must be accepted and evaluated for every fixture, the same way twice; a
/// malformed one must be refused with a reason.
pub(super) async fn condition(report: &mut Report, plugins: &Arc<Plugins>, candidates: &[String]) {
    let mut accepted = None;
    for expression in candidates {
        let (ms, checked) = timed(plugins.condition_check(expression)).await;
        match checked {
            Ok(()) => {
                report.row(format!("check '{expression}'"), true, ms, "accepted");
                accepted = Some(expression.clone());
                break;
            }
            Err(err) => {
                let (pass, detail) = judged(&err);
                report.row(format!("check '{expression}'"), pass, ms, detail);
            }
        }
    }
    let Some(expression) = accepted else {
        report.row("a sample condition is accepted", false, 0, "none of the samples was accepted: give one in the plugin's language with --sample");
        return;
    };
    for (fixture, input) in fixtures() {
        twice(report, format!("evaluate on {fixture}"), || plugins.condition_evaluate(&expression, &input)).await;
    }
    for malformed in ["(((", "\u{0}", &"x".repeat(10_000)] {
        let shown: String = malformed.chars().take(12).collect::<String>().escape_debug().to_string();
        let (ms, answer) = timed(plugins.condition_check(malformed)).await;
        let (pass, detail) = match answer {
            Ok(()) => (false, "accepted a malformed expression: it must be refused with condition_not_valid".into()),
            Err(err) => judged(&err),
        };
        report.row(format!("check '{shown}' (malformed)"), pass, ms, detail);
    }
}

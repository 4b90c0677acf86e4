//! The estimate's unit tests, and the measurement it is calibrated on.
//!
//! Measured with [`measure`] (one process per plan list; peak resident memory of the
//! whole process, whose ~67 MiB before the transcode stand for the estimate's `base`)
//! on a 2-core machine, the plans as the format-video plugin makes them (CRF, x264
//! `medium`, libvpx-vp9 `good`, SVT-AV1 preset 8), inputs: 1080p H.264 (x264
//! `veryfast`, 30 fps) and 2160p H.264 (x264 `ultrafast`, 30 fps), testsrc2:
//!
//! | plan                                        | peak MiB | estimate MiB | ratio |
//! |---------------------------------------------|---------:|-------------:|------:|
//! | mp4:720p (H.264) from 1080p                 |      328 |          399 |  1.22 |
//! | mp4:1080p (H.264)                           |      557 |          600 |  1.08 |
//! | mp4:2160p (H.264)                           |     1764 |         1897 |  1.08 |
//! | webm:720p (VP9) from 1080p                  |      272 |          328 |  1.21 |
//! | webm:1080p (VP9)                            |      407 |          455 |  1.12 |
//! | webm:2160p (VP9)                            |     1168 |         1340 |  1.15 |
//! | mp4:hevc_720p from 1080p                    |      324 |          362 |  1.12 |
//! | mp4:hevc_1080p                              |      507 |          542 |  1.07 |
//! | mp4:av1_720p from 1080p                     |      366 |          425 |  1.16 |
//! | mp4:av1_1080p                               |      640 |          686 |  1.07 |
//! | httpstream, 4 H.264 rungs 1080p…360p        |      952 |         1151 |  1.21 |
//! | jpg:160x sprite, 100 tiles, from 1080p      |      145 |          167 |  1.15 |
//! | decode only: 1080p / 2160p (16x16 output)   | 137 / 262 |   197 / 382 | 1.44 / 1.46 |
//! | gif:320x_10fps, 10 s, from 1080p            |      158 |          283 |  1.79 |
//! | gif:3840x2160_10fps, 10 s, from 2160p       |      463 |          901 |  1.95 |
//! | the same from 2160p 4:4:4 noise             |      700 |         1151 |  1.64 |
//!
//! A GIF's estimate counts `palettegen`'s colours at their worst (a new colour for every
//! pixel, up to 2^24); these clips have few (testsrc2) or some millions (noise). Before
//! the GIF's two passes, the gif:3840x2160_2fps of a 60 s 4K input in
//! `test_decode_limits.py` took the server to 4,340 MiB; now 524 MiB.

use super::*;
use crate::types::{Fit, HlsPlan, OutputType, SpritePlan, TimeRange, VariantPlan};

fn input(width: u32, height: u32, codec: &str) -> MediaInfo {
    MediaInfo {
        width,
        height,
        duration: 60.0,
        fps: 30.0,
        has_video: true,
        has_audio: true,
        video_codec: codec.into(),
        audio_codec: "aac".into(),
        pix_fmt: "yuv420p".into(),
        sample_rate: 48_000,
        channels: 2,
        ..MediaInfo::default()
    }
}

fn video(codec: &str, width: u32, height: u32, options: &[(&str, &str)]) -> VideoPlan {
    use crate::media::test_fixtures::{options as pairs, video_plan};
    VideoPlan { crf: Some(23.0), encoder_options: pairs(options), ..video_plan(codec, width, height) }
}

fn audio() -> AudioPlan {
    crate::media::test_fixtures::aac(128, 48_000)
}

fn file(container: &str, video: Option<VideoPlan>, audio: Option<AudioPlan>) -> OutputPlan {
    OutputPlan {
        output_type: OutputType::Video,
        container: container.into(),
        extension: container.into(),
        mime_type: "video/mp4".into(),
        video,
        audio,
        range: None,
        image: None,
        packaging: None,
        target_vmaf: None,
        audio_tracks: crate::types::AudioSelection::Main,
        tracks: Vec::new(),
    }
}

fn gif_plan(width: u32, height: u32, fps: f64, seconds: f64) -> OutputPlan {
    let mut plan = video("gif", width, height, &[]);
    plan.fps = Some(fps);
    OutputPlan { range: Some(TimeRange { offset: 0.0, duration: Some(seconds) }), ..file("gif", Some(plan), None) }
}

fn sprite(width: u32, height: u32, columns: u32, rows: u32) -> OutputPlan {
    let image = ImagePlan {
        codec: "mjpeg".into(),
        width,
        height,
        fit: Fit::Stretch,
        times: (0..columns * rows).map(f64::from).collect(),
        sprite: Some(SpritePlan { columns, rows }),
        encoder_options: Vec::new(),
    };
    OutputPlan { image: Some(image), ..file("image2", None, None) }
}

fn ladder(rungs: &[(u32, u32)]) -> OutputPlan {
    let variants = rungs
        .iter()
        .map(|&(w, h)| VariantPlan { name: format!("{h}p"), video: Some(video("h264", w, h, &[])), audio: Some(audio()) })
        .collect();
    let package = StreamPlan { variants, segment_duration: 6.0, hls: Some(HlsPlan { fmp4: false }), dash: false };
    OutputPlan { packaging: Some(package), ..file("httpstream", None, None) }
}

const MB: u64 = 1 << 20;

#[test]
fn memory_grows_with_pictures_and_sizes_not_with_a_gifs_length() {
    let info = input(3840, 2160, "h264");
    let short = memory_estimate(&info, &[gif_plan(3840, 2160, 30.0, 2.0)]);
    let long = memory_estimate(&info, &[gif_plan(3840, 2160, 30.0, 60.0)]);
    assert_eq!(short, long, "a GIF's memory is flat in its length once its colours could all be there");
    let small = memory_breakdown(&info, &[gif_plan(320, 180, 10.0, 10.0)]).outputs[0];
    let large = memory_breakdown(&info, &[gif_plan(3840, 2160, 30.0, 60.0)]).outputs[0];
    assert!(small < large / 2, "{small} vs {large}");

    let p720 = memory_estimate(&input(1920, 1080, "h264"), &[file("mp4", Some(video("h264", 1280, 720, &[])), Some(audio()))]);
    let p1080 = memory_estimate(&input(1920, 1080, "h264"), &[file("mp4", Some(video("h264", 1920, 1080, &[])), Some(audio()))]);
    let p2160 = memory_estimate(&info, &[file("mp4", Some(video("h264", 3840, 2160, &[])), Some(audio()))]);
    assert!(p720 < p1080 && p1080 < p2160, "{p720} {p1080} {p2160}");
    // x264's lookahead is most of it: ultrafast holds far fewer frames.
    let fast = memory_estimate(&info, &[file("mp4", Some(video("h264", 3840, 2160, &[("preset", "ultrafast")])), None)]);
    assert!(fast < p2160 / 2, "{fast} vs {p2160}");

    // Outputs add up; the decode is counted once.
    let one = memory_breakdown(&info, &[file("mp4", Some(video("h264", 1280, 720, &[])), None)]);
    let two = memory_breakdown(&info, &[file("mp4", Some(video("h264", 1280, 720, &[])), None), file("mp4", Some(video("h264", 1280, 720, &[])), None)]);
    assert_eq!(two.decode, one.decode);
    assert_eq!(two.total(), one.total() + one.outputs[0]);
}

#[test]
fn a_ladder_a_sprite_and_audio_are_counted() {
    let info = input(1920, 1080, "h264");
    let four = memory_breakdown(&info, &[ladder(&[(1920, 1080), (1280, 720), (854, 480), (640, 360)])]);
    let one = memory_breakdown(&info, &[ladder(&[(1920, 1080)])]);
    assert!(four.outputs[0] > one.outputs[0] * 3 / 2, "{four:?} {one:?}");
    // A 10x10 sheet of 160x90 tiles is a 1600x900 picture.
    let sheet = memory_breakdown(&info, &[sprite(160, 90, 10, 10)]).outputs[0];
    let tile = memory_breakdown(&info, &[sprite(160, 90, 1, 1)]).outputs[0];
    assert!(sheet > tile + 5 * MB, "{sheet} vs {tile}");
    // Audio only: no video decode.
    let audio_only = memory_breakdown(&info, &[file("mp4", None, Some(audio()))]);
    assert!(audio_only.decode < 8 * MB, "{audio_only:?}");
}

#[test]
fn unknown_formats_count_as_the_widest() {
    assert_eq!(pixel_bytes("yuv420p"), 1.5);
    assert_eq!(pixel_bytes("yuv420p10le"), 3.0);
    assert_eq!(pixel_bytes("yuv444p12le"), 6.0);
    assert_eq!(pixel_bytes("pal8"), 1.0);
    assert_eq!(pixel_bytes("something"), 12.0);
}

/// A 4K GIF of a minute, the job that asked for ~60 GB when every frame waited for the
/// palette, fits in the default 2 GiB; twenty 4K H.264 encodes do not.
#[test]
fn the_default_budget_takes_a_4k_gif_and_refuses_a_wall_of_4k_encodes() {
    let limits = crate::config::Limits::default();
    let info = input(3840, 2160, "h264");
    let gif = gif_plan(3840, 2160, 30.0, 60.0);
    super::super::check_job(&info, &[("gif", &gif)], &limits, false).unwrap();
    let encode = file("mp4", Some(video("h264", 3840, 2160, &[])), Some(audio()));
    let wall: Vec<(&str, &OutputPlan)> = (0..20).map(|_| ("uhd", &encode)).collect();
    let refused = super::super::check_job(&info, &wall, &limits, false).unwrap_err().to_string();
    assert!(refused.contains("max_job_memory_mib") && refused.contains("2048 MiB") && refused.contains("output 'uhd'"), "{refused}");
}

/// The measurement the constants are calibrated on: run one plan list on one input and
/// print the process's peak resident memory beside the estimate. Run alone, e.g.
/// `COPRA_MEASURE_INPUT=in.mp4 COPRA_MEASURE_PLANS=plans.json cargo test -p copra --lib
/// media::memory::tests::measure -- --ignored --exact --nocapture`, where plans.json
/// holds a list of `OutputPlan`s (a dry run's `plan`s).
#[test]
#[ignore = "a measurement, run by hand"]
fn measure() {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    let input = std::path::PathBuf::from(std::env::var("COPRA_MEASURE_INPUT").expect("COPRA_MEASURE_INPUT"));
    let plans: Vec<OutputPlan> =
        serde_json::from_str(&std::fs::read_to_string(std::env::var("COPRA_MEASURE_PLANS").expect("COPRA_MEASURE_PLANS")).unwrap()).unwrap();
    let limits = super::super::DecodeLimits::unlimited();
    let (info, _) = super::super::probe(&input, &limits).unwrap();
    if std::env::var_os("COPRA_MEASURE_ESTIMATE_ONLY").is_some() {
        println!("ESTIMATE {} MiB ({:?})", memory_estimate(&info, &plans) / MB, memory_breakdown(&info, &plans));
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let targets: Vec<super::super::OutputTarget> = plans
        .iter()
        .enumerate()
        .map(|(i, plan)| super::super::OutputTarget { plan: plan.clone(), path: out.path().join(format!("out-{i}.{}", plan.extension)) })
        .collect();
    let hwm = || {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap().to_string();
        line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
    };
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let before = hwm();
    let results = super::super::transcode(&input, &targets, Arc::new(|_| {}), &AtomicBool::new(false), &limits);
    let peak = hwm();
    for result in &results {
        assert!(result.is_ok(), "{result:?}");
    }
    let estimate = memory_breakdown(&info, &plans);
    // The process before the transcode stands for the engine's own process (the
    // estimate's `base`): the ratio is the estimate over the whole peak.
    println!(
        "MEASURED before={} MiB peak={} MiB estimate={} MiB ratio={:.2} ({estimate:?})",
        before / MB,
        peak / MB,
        estimate.total() / MB,
        estimate.total() as f64 / peak as f64
    );
}

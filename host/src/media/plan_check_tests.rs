//! Unit tests of the plan check: plans like the first-party plugin's pass, and each
//! hostile field is refused with a message naming it and its bound.

use std::time::Duration;

use super::*;
use crate::media::{InputRefused, PlanRefused};
use crate::types::{Fit, HlsPlan, SpritePlan, VariantPlan};

fn video() -> VideoPlan {
    use crate::media::test_fixtures::{h264, options};
    VideoPlan { fps: Some(25.0), encoder_options: options(&[("preset", "medium"), ("profile", "high")]), ..h264(1280, 720, 23.0, "medium") }
}

fn audio() -> AudioPlan {
    crate::media::test_fixtures::aac(128, 44100)
}

fn loudness(integrated: f64, true_peak: f64) -> crate::types::LoudnessPlan {
    crate::types::LoudnessPlan { integrated, true_peak, lra: 11.0, measure_only: false, input: None, limited: None, tracks: Vec::new() }
}

fn file() -> OutputPlan {
    OutputPlan {
        output_type: OutputType::Video,
        container: "mp4".into(),
        extension: "mp4".into(),
        mime_type: "video/mp4".into(),
        video: Some(video()),
        audio: Some(audio()),
        range: None,
        image: None,
        packaging: None,
        target_vmaf: None,
        audio_tracks: crate::types::AudioSelection::Main,
        tracks: Vec::new(),
    }
}

fn pictures(times: Vec<f64>) -> OutputPlan {
    OutputPlan {
        output_type: OutputType::Image,
        container: "image2".into(),
        extension: "jpg".into(),
        mime_type: "image/jpeg".into(),
        video: None,
        audio: None,
        range: None,
        image: Some(ImagePlan {
            codec: "mjpeg".into(),
            width: 320,
            height: 180,
            fit: Fit::Stretch,
            times,
            sprite: None,
            encoder_options: vec![("qmin".into(), "5".into()), ("qmax".into(), "5".into())],
        }),
        packaging: None,
        target_vmaf: None,
        audio_tracks: crate::types::AudioSelection::Main,
        tracks: Vec::new(),
    }
}

fn package(rungs: usize) -> OutputPlan {
    let rung = |i: usize| VariantPlan {
        name: format!("{}p", 1080 - i),
        video: Some(VideoPlan {
            keyframe_interval: Some(2.0),
            encoder_options: vec![
                ("preset".into(), "medium".into()),
                ("maxrate".into(), "6000k".into()),
                ("bufsize".into(), "12000k".into()),
            ],
            ..video()
        }),
        audio: Some(AudioPlan { sample_rate: 48000, ..audio() }),
    };
    OutputPlan {
        output_type: OutputType::Httpstream,
        container: "httpstream".into(),
        extension: "m3u8".into(),
        mime_type: "application/vnd.apple.mpegurl".into(),
        video: None,
        audio: None,
        range: Some(TimeRange { offset: 0.0, duration: None }),
        image: None,
        packaging: Some(StreamPlan {
            variants: (0..rungs).map(rung).collect(),
            segment_duration: 6.0,
            hls: Some(HlsPlan { fmp4: false }),
            dash: true,
        }),
        target_vmaf: None,
        audio_tracks: crate::types::AudioSelection::Main,
        tracks: Vec::new(),
    }
}

fn limits() -> Limits {
    Limits::default()
}

/// The refusal of `plan`, which must mention every one of `needles`.
fn refused(plan: &OutputPlan, needles: &[&str]) {
    let err = check_plan(plan, &limits()).expect_err("the plan should be refused").to_string();
    for needle in needles {
        assert!(err.contains(needle), "'{needle}' not in: {err}");
    }
}

#[test]
fn plans_like_the_first_party_pass() {
    check_plan(&file(), &limits()).unwrap();
    check_plan(&pictures(vec![1.0, 2.0, 2.0, 3.5]), &limits()).unwrap();
    check_plan(&package(4), &limits()).unwrap();
    let mut hevc = file();
    let v = hevc.video.as_mut().unwrap();
    v.codec = "hevc".into();
    v.pix_fmt = "yuv420p10le".into();
    v.encoder_options = vec![("preset".into(), "slow".into()), ("x265-params".into(), "log-level=error:level-idc=5.1".into())];
    check_plan(&hevc, &limits()).unwrap();
    let mut gif = file();
    gif.container = "gif".into();
    gif.output_type = OutputType::Image;
    gif.audio = None;
    let v = gif.video.as_mut().unwrap();
    (v.codec, v.pix_fmt, v.width, v.crf, v.encoder_options) = ("gif".into(), "pal8".into(), 321, None, Vec::new());
    gif.range = Some(TimeRange { offset: 0.0, duration: Some(10.0) });
    check_plan(&gif, &limits()).unwrap();
    let mut audio_only = file();
    audio_only.video = None;
    (audio_only.container, audio_only.extension, audio_only.mime_type) = ("ogg".into(), "ogg".into(), "audio/ogg; codecs=opus".into());
    audio_only.audio = Some(AudioPlan { codec: "flac".into(), bitrate_kbps: 0, sample_rate: 96000, channels: 2, loudness: None });
    check_plan(&audio_only, &limits()).unwrap();
    let mut sprite = pictures(vec![0.0; 100]);
    sprite.image.as_mut().unwrap().sprite = Some(SpritePlan { columns: 10, rows: 10 });
    check_plan(&sprite, &limits()).unwrap();
}

#[test]
fn sizes_are_bounded() {
    let mut giant = file();
    (giant.video.as_mut().unwrap().width, giant.video.as_mut().unwrap().height) = (100_000, 100_000);
    refused(&giant, &["video", "100000x100000", "16384"]);
    let mut big = file();
    (big.video.as_mut().unwrap().width, big.video.as_mut().unwrap().height) = (16384, 16384);
    refused(&big, &["268435456 pixels", "max_pixels"]);
    let mut zero = file();
    zero.video.as_mut().unwrap().height = 0;
    refused(&zero, &["side of 0"]);
    let mut odd = file();
    odd.video.as_mut().unwrap().width = 1279;
    refused(&odd, &["even", "yuv420p"]);
    odd.video.as_mut().unwrap().pix_fmt = "yuv444p".into();
    check_plan(&odd, &limits()).unwrap();
    let small = Limits { max_pixels: 640 * 360, ..limits() };
    assert!(check_plan(&file(), &small).unwrap_err().to_string().contains("max_pixels"));
    // Who can act on it: the operator's limit, or the plugin's value.
    assert!(matches!(check_plan(&file(), &small), Err(PlanRefused::OverLimit(_))));
    assert!(matches!(check_plan(&giant, &limits()), Err(PlanRefused::Value(_))));
}

#[test]
fn rates_and_timings_are_bounded() {
    for (fps, ok) in [(f64::NAN, false), (1e6, false), (0.0, false), (-5.0, false), (f64::INFINITY, false), (240.0, true), (29.97, true)] {
        let mut plan = file();
        plan.video.as_mut().unwrap().fps = Some(fps);
        assert_eq!(check_plan(&plan, &limits()).is_ok(), ok, "fps {fps}");
        if !ok {
            refused(&plan, &["fps", "240"]);
        }
    }
    let mut plan = file();
    plan.video.as_mut().unwrap().bitrate_kbps = Some(0);
    refused(&plan, &["bitrate", "500000"]);
    plan.video.as_mut().unwrap().bitrate_kbps = Some(600_000);
    refused(&plan, &["bitrate"]);
    let mut plan = file();
    plan.video.as_mut().unwrap().crf = Some(f32::NAN);
    refused(&plan, &["crf", "0..=51"]);
    plan.video.as_mut().unwrap().crf = Some(60.0);
    refused(&plan, &["crf", "libx264"]);
    plan.video.as_mut().unwrap().codec = "vp9".into();
    plan.video.as_mut().unwrap().encoder_options.clear();
    check_plan(&plan, &limits()).unwrap();
    plan.video.as_mut().unwrap().codec = "mpeg4".into();
    refused(&plan, &["crf", "mpeg4", "no constant-quality"]);
    let mut plan = file();
    plan.video.as_mut().unwrap().gop = Some(10_001);
    refused(&plan, &["gop", "10000"]);
    let mut plan = file();
    plan.video.as_mut().unwrap().keyframe_interval = Some(0.0);
    refused(&plan, &["keyframe_interval"]);
    plan.video.as_mut().unwrap().keyframe_interval = Some(61.0);
    refused(&plan, &["keyframe_interval", "60"]);
    let mut plan = file();
    plan.range = Some(TimeRange { offset: f64::NAN, duration: None });
    refused(&plan, &["range offset"]);
    plan.range = Some(TimeRange { offset: 1.0, duration: Some(-1.0) });
    refused(&plan, &["range duration"]);
    let mut plan = file();
    plan.video.as_mut().unwrap().rotate = 45;
    refused(&plan, &["rotate"]);
}

#[test]
fn burn_in_names_a_language_and_never_a_file() {
    let mut plan = file();
    plan.video.as_mut().unwrap().burn_in = Some("pt-BR".into());
    assert!(check_plan(&plan, &Limits::default()).is_ok());
    plan.video.as_mut().unwrap().burn_in = Some("en';movie=/etc/passwd".into());
    refused(&plan, &["burn_in", "language tag"]);
    let mut plan = file();
    plan.video.as_mut().unwrap().burn_in_file = Some("/etc/passwd".into());
    refused(&plan, &["subtitle file", "only the host"]);
    assert!(matches!(check_plan(&plan, &limits()), Err(PlanRefused::HostOnly(_))));
}

#[test]
fn overlays_are_bounded() {
    use crate::types::{OverlayAnchor, OverlayPlan};
    let overlay = OverlayPlan {
        url: "https://example.com/logo.png".into(),
        width: 64,
        anchor: OverlayAnchor::TopLeft,
        x: 16,
        y: 16,
        opacity: 0.5,
        start: 0.0,
        end: None,
        fade: 0.0,
        file: None,
    };
    let with = |o: Vec<OverlayPlan>| {
        let mut plan = file();
        plan.video.as_mut().unwrap().overlays = o;
        plan
    };
    assert!(check_plan(&with(vec![overlay.clone(); 8]), &Limits::default()).is_ok());
    for (overlays, needle) in [
        (vec![overlay.clone(); 9], "9 overlays; at most 8"),
        (vec![OverlayPlan { url: "file:///etc/passwd".into(), ..overlay.clone() }], "not an http(s) URL"),
        (vec![OverlayPlan { url: "https://".into(), ..overlay.clone() }], "not an http(s) URL"),
        (vec![OverlayPlan { width: 100_000, ..overlay.clone() }], "width 100000"),
        (vec![OverlayPlan { x: -100_000, ..overlay.clone() }], "position"),
        (vec![OverlayPlan { opacity: f32::NAN, ..overlay.clone() }], "opacity"),
        (vec![OverlayPlan { start: 5.0, end: Some(2.0), ..overlay.clone() }], "times"),
        (vec![OverlayPlan { fade: 1e9, ..overlay.clone() }], "times"),
        (vec![OverlayPlan { file: Some("/etc/passwd".into()), ..overlay.clone() }], "only the host fetches"),
    ] {
        refused(&with(overlays), &["overlay", needle]);
    }
}

#[test]
fn audio_is_bounded() {
    for (audio, needle) in [
        (AudioPlan { sample_rate: 4000, ..audio() }, "sample rate"),
        (AudioPlan { sample_rate: 384_000, ..audio() }, "sample rate"),
        (AudioPlan { channels: 0, ..audio() }, "channels"),
        (AudioPlan { channels: 64, ..audio() }, "channels"),
        (AudioPlan { bitrate_kbps: 5000, ..audio() }, "1024"),
        (AudioPlan { codec: "libfdk_aac".into(), ..audio() }, "codec"),
        (AudioPlan { loudness: Some(loudness(-3.0, -1.0)), ..audio() }, "integrated loudness"),
        (AudioPlan { loudness: Some(loudness(-16.0, 3.0)), ..audio() }, "true peak"),
        (AudioPlan { loudness: Some(loudness(f64::NAN, -1.0)), ..audio() }, "integrated loudness"),
        (AudioPlan { loudness: Some(crate::types::LoudnessPlan { input: Some(crate::types::Loudness { integrated: -20.0, lra: 1.0, true_peak: -1.0 }), ..loudness(-16.0, -1.0) }), ..audio() }, "only the host"),
    ] {
        let mut plan = file();
        plan.audio = Some(audio);
        refused(&plan, &["audio", needle]);
    }
}

#[test]
fn names_come_from_the_hosts_sets() {
    let mut plan = file();
    plan.container = "tee".into();
    refused(&plan, &["container 'tee'"]);
    let mut plan = file();
    plan.video.as_mut().unwrap().scaler = "bicubic,movie=/etc/passwd".into();
    refused(&plan, &["scaler"]);
    let mut plan = file();
    plan.video.as_mut().unwrap().pix_fmt = "yuv420p,drawtext=textfile=/etc/passwd".into();
    refused(&plan, &["pix_fmt"]);
    let mut plan = file();
    plan.video.as_mut().unwrap().codec = "rawvideo".into();
    refused(&plan, &["codec 'rawvideo'"]);
    for extension in ["../../etc/x", "mp4/", "", "m\np4", "a.b", &"x".repeat(40)] {
        let mut plan = file();
        plan.extension = extension.into();
        refused(&plan, &["extension"]);
    }
    for mime in ["video", "video/../../x", "video/mp4\r\nX-Evil: 1", "/mp4", &format!("video/{}", "x".repeat(200))] {
        let mut plan = file();
        plan.mime_type = mime.into();
        refused(&plan, &["MIME type"]);
    }
}

#[test]
fn encoder_options_come_from_the_allowlist() {
    let mut plan = file();
    plan.video.as_mut().unwrap().encoder_options.push(("stats".into(), "/tmp/pwned".into()));
    refused(&plan, &["'stats'", "libx264"]);
    let mut plan = file();
    let v = plan.video.as_mut().unwrap();
    v.codec = "hevc".into();
    v.encoder_options = vec![("x265-params".into(), "log-level=error:csv=/tmp/pwned".into())];
    refused(&plan, &["x265-params key 'csv'"]);
    let mut plan = pictures(vec![1.0]);
    plan.image.as_mut().unwrap().encoder_options.push(("pred".into(), "mixed".into()));
    refused(&plan, &["image", "'pred'", "mjpeg"]);
}

#[test]
fn lists_are_bounded() {
    refused(&pictures(Vec::new()), &["no picture"]);
    refused(&pictures((0..1_000_000).map(f64::from).collect()), &["1000000 pictures", "max_pictures"]);
    refused(&pictures(vec![3.0, 2.0]), &["increasing"]);
    refused(&pictures(vec![f64::NAN]), &["image time"]);
    refused(&pictures(vec![-1.0]), &["image time"]);
    let mut sprite = pictures(vec![0.0]);
    sprite.image.as_mut().unwrap().sprite = Some(SpritePlan { columns: 1000, rows: 1000 });
    refused(&sprite, &["sprite grid", "max_pictures"]);
    sprite.image.as_mut().unwrap().sprite = Some(SpritePlan { columns: 60, rows: 1 });
    refused(&sprite, &["sprite sheets", "16384"]);
    sprite.image.as_mut().unwrap().sprite = Some(SpritePlan { columns: 0, rows: 4 });
    refused(&sprite, &["sprite grid"]);
    refused(&package(1000), &["1000 variants", "max_variants"]);
    refused(&package(0), &["0 variants"]);
    let mut plan = package(2);
    plan.packaging.as_mut().unwrap().segment_duration = 0.1;
    refused(&plan, &["segment_duration"]);
    plan.packaging.as_mut().unwrap().segment_duration = f64::NAN;
    refused(&plan, &["segment_duration"]);
    let mut plan = package(2);
    plan.packaging.as_mut().unwrap().variants[1].video.as_mut().unwrap().fps = Some(1e6);
    refused(&plan, &["variant '1079p' video fps"]);
    let mut plan = package(2);
    plan.packaging.as_mut().unwrap().variants[0].name = "a\u{0}b".into();
    refused(&plan, &["variant name"]);
}

#[test]
fn plan_shapes_are_one_kind() {
    let mut plan = pictures(vec![1.0]);
    plan.video = Some(video());
    refused(&plan, &["pictures"]);
    let mut plan = file();
    (plan.video, plan.audio) = (None, None);
    refused(&plan, &["no video, audio"]);
    let mut plan = file();
    plan.container = "image2".into();
    refused(&plan, &["needs pictures or a package"]);
    assert!(matches!(check_plan(&plan, &limits()), Err(PlanRefused::Shape(_))));
}

#[test]
fn inputs_are_held_to_pixels_and_duration() {
    let limits = Limits { max_pixels: 640 * 480, max_duration: Duration::from_secs(10), ..Limits::default() };
    let info = |width, height, duration| MediaInfo { width, height, duration, has_video: true, ..Default::default() };
    check_input(&info(640, 480, 10.0), &limits).unwrap();
    check_input(&MediaInfo { duration: 5.0, has_audio: true, ..Default::default() }, &limits).unwrap();
    assert_eq!(
        check_input(&info(1280, 720, 1.0), &limits),
        Err(InputRefused::TooManyPixels { width: 1280, height: 720, pixels: 921_600, limit: 307_200 })
    );
    let err = check_input(&info(1280, 720, 1.0), &limits).unwrap_err().to_string();
    assert!(err.contains("1280x720") && err.contains("max_pixels") && err.contains("COPRA_LIMITS_MAX_PIXELS"), "{err}");
    let err = check_input(&info(320, 240, 11.0), &limits).unwrap_err().to_string();
    assert!(err.contains("11.0 seconds") && err.contains("max_duration_secs") && err.contains("COPRA_LIMITS_MAX_DURATION_SECS"), "{err}");
}

#[test]
fn a_searched_setting_is_held_to_the_plan_check() {
    let mut searched = file();
    searched.target_vmaf = Some(93.0);
    assert_eq!(plan_at_setting(searched.clone(), 30.5, &limits()).unwrap().video.unwrap().crf, Some(30.5));
    let err = plan_at_setting(searched, 90.0, &limits()).unwrap_err().to_string();
    assert!(err.contains("crf 90") && err.contains("range"), "{err}");
    let mut no_crf = file();
    no_crf.video.as_mut().unwrap().crf = None;
    assert!(plan_at_setting(no_crf, 23.0, &limits()).unwrap_err().to_string().contains("no constant-quality setting"));
    let mut audio_only = file();
    audio_only.video = None;
    assert!(plan_at_setting(audio_only, 23.0, &limits()).unwrap_err().to_string().contains("no video"));
}

#[test]
fn a_ladder_planned_from_the_content_is_held_to_the_plan_check() {
    use crate::types::LadderStep;
    let rung = |name: &str| VariantPlan { name: name.into(), video: Some(VideoPlan { keyframe_interval: Some(2.0), ..video() }), audio: None };
    let auto = OutputPlan {
        output_type: OutputType::Httpstream,
        container: "httpstream".into(),
        extension: "m3u8".into(),
        mime_type: "application/vnd.apple.mpegurl".into(),
        video: None,
        audio: None,
        packaging: Some(StreamPlan { variants: vec![rung("720p")], segment_duration: 6.0, hls: Some(HlsPlan { fmp4: false }), dash: false }),
        target_vmaf: Some(95.0),
        audio_tracks: crate::types::AudioSelection::Main,
        tracks: Vec::new(),
        ..file()
    };
    check_plan(&auto, &limits()).unwrap();
    // The step: bounded probes a round, bounded rounds, a ladder of at least one rung.
    check_ladder_step(&LadderStep::Probe(vec![video(); MAX_LADDER_PROBES]), 0).unwrap();
    assert!(check_ladder_step(&LadderStep::Probe(vec![video(); 10_000]), 0).unwrap_err().to_string().contains("10000 probes"));
    assert!(check_ladder_step(&LadderStep::Probe(vec![]), 0).is_err());
    assert!(check_ladder_step(&LadderStep::Probe(vec![video()]), MAX_LADDER_ROUNDS).unwrap_err().to_string().contains("rounds"));
    assert!(check_ladder_step(&LadderStep::Done(vec![]), 1).unwrap_err().to_string().contains("no rungs"));
    assert!(matches!(check_ladder_step(&LadderStep::Probe(vec![video()]), MAX_LADDER_ROUNDS), Err(PlanRefused::Step(_))));
    // Each probe as the sample file it becomes.
    let window = TimeRange { offset: 1.0, duration: Some(2.0) };
    let sample = ladder_probe_plan(&video(), &window, &limits()).unwrap();
    assert!(sample.audio.is_none() && sample.range == Some(window.clone()) && sample.target_vmaf.is_none());
    let giant = VideoPlan { width: 100_000, ..video() };
    assert!(ladder_probe_plan(&giant, &window, &limits()).unwrap_err().to_string().contains("100000"));
    let bitrate = VideoPlan { crf: None, bitrate_kbps: Some(1000), ..video() };
    assert!(ladder_probe_plan(&bitrate, &window, &limits()).unwrap_err().to_string().contains("constant-quality"));
    // The ladder settled on, as the package it becomes.
    let planned = plan_with_ladder(auto.clone(), vec![rung("720p"), rung("720p-2")], &limits()).unwrap();
    assert_eq!(planned.packaging.unwrap().variants.len(), 2);
    assert!(planned.target_vmaf.is_none(), "a planned ladder is not planned again");
    let err = plan_with_ladder(auto, (0..1000).map(|i| rung(&format!("r{i}"))).collect(), &limits()).unwrap_err().to_string();
    assert!(err.contains("1000 variants"), "{err}");
}

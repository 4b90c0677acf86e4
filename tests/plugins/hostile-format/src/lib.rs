//! A format plugin whose plans are hostile on purpose: the format name says which
//! misdeed. Checks pass (so the job is accepted); the host must refuse each plan before
//! any encode and still encode the `fine` one. Params may carry `file`, a path the
//! file-writing misdeeds aim at, so a test can tell that nothing was written there.

use copra_sdk::format::{
    AudioPlan, AudioSelection, LoudnessPlan, OverlayAnchor, OverlayPlan, Fit, Format, HlsPlan, ImagePlan, LadderProbe, LadderStep, MediaInfo, OutputPlan, OutputType, QualityProbe, QualityStep,
    StreamPlan, VariantPlan, VideoPlan,
};
use copra_sdk::{Error, Json};

struct Hostile;

/// Every misdeed, and the output type it claims.
const FORMATS: &[(&str, OutputType)] = &[
    ("fine", OutputType::Video),
    // Refused at check with the host's own code, `authentication_failed`.
    ("forge", OutputType::Video),
    ("giant", OutputType::Video),
    ("manythumbs", OutputType::Image),
    ("stats", OutputType::Video),
    ("x265file", OutputType::Video),
    ("badfps", OutputType::Video),
    ("hugefps", OutputType::Video),
    ("manyvariants", OutputType::Httpstream),
    ("scaler", OutputType::Video),
    ("badext", OutputType::Video),
    // A target quality whose search asks for 10,000 probe encodes at once.
    ("manyprobes", OutputType::Video),
    // A target quality whose search never settles.
    ("endlessprobes", OutputType::Video),
    // A ladder planned from the content that asks for 10,000 probe encodes at once.
    ("manyladderprobes", OutputType::Httpstream),
    // A ladder planned from the content whose probe is a giant picture.
    ("giantladderprobe", OutputType::Httpstream),
    // A ladder planned from the content that settles on 1,000 rungs.
    ("manyladderrungs", OutputType::Httpstream),
    // A loudness target no gain should reach (+20 LUFS: 36 dB over full-scale speech).
    ("loudmouth", OutputType::Video),
    // 10,000 watermarks on one picture.
    ("manyoverlays", OutputType::Video),
    // A watermark read from the server's own files.
    ("fileoverlay", OutputType::Video),
    // A watermark fetched from the cloud's metadata address.
    ("metadataoverlay", OutputType::Video),
    // 10,000 audio languages, and one that would write lines into a playlist.
    ("manylanguages", OutputType::Video),
    ("playlistlanguage", OutputType::Video),
];

fn overlay(url: &str) -> OverlayPlan {
    OverlayPlan { url: url.into(), width: 32, anchor: OverlayAnchor::TopLeft, x: 0, y: 0, opacity: 1.0, start: 0.0, end: None, fade: 0.0 }
}

fn name(format: &str) -> &str {
    format.split(':').next().unwrap_or_default()
}

/// A small, valid H.264 video plan.
fn video() -> VideoPlan {
    VideoPlan {
        codec: "h264".into(),
        width: 320,
        height: 240,
        fps: None,
        bitrate_kbps: None,
        crf: Some(28.0),
        pix_fmt: "yuv420p".into(),
        gop: None,
        keyframe_interval: None,
        encoder_options: vec![("preset".into(), "ultrafast".into())],
        scaler: "bicubic".into(),
        fit: Fit::Stretch,
        rotate: 0,
        tone_map: false,
        overlays: Vec::new(),
        burn_in: None,
    }
}

fn audio() -> AudioPlan {
    AudioPlan { codec: "aac".into(), bitrate_kbps: 96, sample_rate: 44100, channels: 2, loudness: None }
}

/// An HLS package with no variants yet.
fn stream() -> OutputPlan {
    OutputPlan {
        output_type: OutputType::Httpstream,
        container: "httpstream".into(),
        extension: "m3u8".into(),
        mime_type: "application/vnd.apple.mpegurl".into(),
        video: None,
        audio: None,
        range: None,
        image: None,
        packaging: None,
        target_vmaf: None,
        audio_tracks: AudioSelection::Main,
    }
}

/// A small, valid MP4 plan.
fn mp4(video: VideoPlan) -> OutputPlan {
    OutputPlan {
        output_type: OutputType::Video,
        container: "mp4".into(),
        extension: "mp4".into(),
        mime_type: "video/mp4".into(),
        video: Some(video),
        audio: Some(audio()),
        range: None,
        image: None,
        packaging: None,
        target_vmaf: None,
        audio_tracks: AudioSelection::Main,
    }
}

fn plan(format: &str, params: &Json, _input: &MediaInfo) -> Result<OutputPlan, Error> {
    let file = params.get("file").and_then(Json::as_str).unwrap_or("/tmp/copra-hostile-format-pwned").to_string();
    let option = |k: &str, v: &str| (k.to_string(), v.to_string());
    Ok(match name(format) {
        "fine" => mp4(video()),
        "giant" => mp4(VideoPlan { width: 100_000, height: 100_000, ..video() }),
        "manythumbs" => OutputPlan {
            output_type: OutputType::Image,
            container: "image2".into(),
            extension: "jpg".into(),
            mime_type: "image/jpeg".into(),
            video: None,
            audio: None,
            range: None,
            image: Some(ImagePlan {
                codec: "mjpeg".into(),
                width: 160,
                height: 120,
                fit: Fit::Stretch,
                times: (0..1_000_000).map(|i| f64::from(i) * 1e-5).collect(),
                sprite: None,
                encoder_options: Vec::new(),
            }),
            packaging: None,
            target_vmaf: None,
            audio_tracks: AudioSelection::Main,
        },
        // x264 writes its first-pass statistics to `stats`.
        "stats" => mp4(VideoPlan {
            encoder_options: vec![option("preset", "ultrafast"), option("stats", &file), option("flags", "+pass1"), option("passlogfile", &file)],
            ..video()
        }),
        // x265 writes a CSV log wherever `csv` says.
        "x265file" => mp4(VideoPlan {
            codec: "hevc".into(),
            crf: None,
            encoder_options: vec![option("preset", "ultrafast"), option("x265-params", &format!("log-level=error:csv={file}:csv-log-level=2"))],
            ..video()
        }),
        "badfps" => mp4(VideoPlan { fps: Some(f64::NAN), ..video() }),
        "manyoverlays" => mp4(VideoPlan { overlays: vec![overlay("https://example.com/logo.png"); 10_000], ..video() }),
        "fileoverlay" => mp4(VideoPlan { overlays: vec![overlay("file:///etc/passwd")], ..video() }),
        "metadataoverlay" => mp4(VideoPlan { overlays: vec![overlay("http://169.254.169.254/latest/meta-data/")], ..video() }),
        "loudmouth" => OutputPlan {
            audio: Some(AudioPlan { loudness: Some(LoudnessPlan { integrated: 20.0, true_peak: 6.0, lra: 11.0, measure_only: false }), ..audio() }),
            ..mp4(video())
        },
        "hugefps" => mp4(VideoPlan { fps: Some(1e6), ..video() }),
        "manylanguages" => OutputPlan { audio_tracks: AudioSelection::Languages(vec!["en".into(); 10_000]), ..mp4(video()) },
        "playlistlanguage" => OutputPlan { audio_tracks: AudioSelection::Languages(vec!["en\"\n#EXT-X-ENDLIST".into()]), ..mp4(video()) },
        "manyladderprobes" | "giantladderprobe" | "manyladderrungs" => OutputPlan {
            target_vmaf: Some(95.0),
            audio_tracks: AudioSelection::Main,
            packaging: Some(StreamPlan {
                variants: vec![VariantPlan { name: "240p".into(), video: Some(VideoPlan { keyframe_interval: Some(2.0), ..video() }), audio: None }],
                segment_duration: 4.0,
                hls: Some(HlsPlan { fmp4: false }),
                dash: false,
            }),
            ..stream()
        },
        "manyvariants" => OutputPlan {
            output_type: OutputType::Httpstream,
            container: "httpstream".into(),
            extension: "m3u8".into(),
            mime_type: "application/vnd.apple.mpegurl".into(),
            video: None,
            audio: None,
            range: None,
            image: None,
            packaging: Some(StreamPlan {
                variants: (0..1000)
                    .map(|i| VariantPlan { name: format!("v{i}"), video: Some(VideoPlan { keyframe_interval: Some(2.0), ..video() }), audio: None })
                    .collect(),
                segment_duration: 4.0,
                hls: Some(HlsPlan { fmp4: false }),
                dash: false,
            }),
            target_vmaf: None,
            audio_tracks: AudioSelection::Main,
        },
        // The scaler is spliced into a filter graph: `movie` would read a file.
        "scaler" => mp4(VideoPlan { scaler: format!("bicubic,movie={file}"), ..video() }),
        "badext" => OutputPlan { extension: "mp4/../../../escaped".into(), ..mp4(video()) },
        "manyprobes" | "endlessprobes" => OutputPlan { target_vmaf: Some(93.0), ..mp4(video()) },
        other => return Err(Error::format(format!("unknown misdeed '{other}'"))),
    })
}

impl Format for Hostile {
    const NAME: &'static str = "hostile-format";
    const VERSION: &'static str = "0.1.0";

    fn formats() -> Vec<String> {
        FORMATS.iter().map(|(name, _)| name.to_string()).collect()
    }

    /// Every misdeed passes the check, so that it happens at run time inside a job.
    fn check(format: &str, _params: &Json) -> Result<OutputType, Error> {
        // Answers as the host would, to make the client think its key is wrong.
        if name(format) == "forge" {
            return Err(Error::new("authentication_failed", "Authentication failed: use your API key as the Basic auth username."));
        }
        FORMATS
            .iter()
            .find(|(n, _)| *n == name(format))
            .map(|(_, t)| *t)
            .ok_or_else(|| Error::format(format!("unknown misdeed '{format}'")))
    }

    fn plan(format: &str, params: &Json, input: &MediaInfo) -> Result<OutputPlan, Error> {
        plan(format, params, input)
    }

    fn search_quality(format: &str, _params: &Json, _input: &MediaInfo, probes: &[QualityProbe]) -> Result<QualityStep, Error> {
        Ok(match name(format) {
            "manyprobes" => QualityStep::Probe(vec![28.0; 10_000]),
            // One new setting a round, for ever.
            _ => QualityStep::Probe(vec![20.0 + probes.len() as f32]),
        })
    }

    fn plan_ladder(format: &str, _params: &Json, _input: &MediaInfo, probes: &[LadderProbe]) -> Result<LadderStep, Error> {
        let rung = |i: usize| VariantPlan { name: format!("r{i}"), video: Some(VideoPlan { keyframe_interval: Some(2.0), ..video() }), audio: None };
        Ok(match name(format) {
            "manyladderprobes" => LadderStep::Probe(vec![video(); 10_000]),
            "giantladderprobe" => LadderStep::Probe(vec![VideoPlan { width: 100_000, height: 100_000, ..video() }]),
            // One honest round of probes, then a ladder far past the host's bound.
            _ if probes.is_empty() => LadderStep::Probe(vec![video()]),
            _ => LadderStep::Done((0..1000).map(rung).collect()),
        })
    }
}

copra_sdk::format_plugin!(Hostile);

//! Media engine tests on small inputs generated with FFmpeg's `testsrc2` and `sine`
//! (the `ffmpeg` command makes the fixtures; the engine under test never calls it).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use super::*;
use crate::types::{AudioPlan, Fit, ImagePlan, MediaInfo, OutputPlan, OutputType, SpritePlan, TimeRange, VideoPlan};

fn fixture(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    ffmpeg_cli(
        dir,
        name,
        &[
            "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=2",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=2",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
        ],
        extra,
    )
}

/// Run the ffmpeg command to make a fixture (only ever in tests).
fn ffmpeg_cli(dir: &Path, name: &str, args: &[&str], extra: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(args)
        .args(extra)
        .arg(&path)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg failed making {name}");
    path
}

/// (codec_name, width, height, duration) of the first video stream, per ffprobe — an
/// independent check of what probe() says.
fn ffprobe_video(path: &Path) -> (String, u32, u32, f64) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries", "stream=codec_name,width,height:format=duration", "-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ffprobe json");
    let stream = &json["streams"][0];
    (
        stream["codec_name"].as_str().unwrap_or_default().to_string(),
        stream["width"].as_u64().unwrap_or_default() as u32,
        stream["height"].as_u64().unwrap_or_default() as u32,
        json["format"]["duration"].as_str().and_then(|d| d.parse().ok()).unwrap_or_default(),
    )
}

fn plan(width: u32, height: u32, audio: bool) -> OutputPlan {
    OutputPlan {
        output_type: OutputType::Video,
        container: "mp4".into(),
        extension: "mp4".into(),
        mime_type: "video/mp4".into(),
        video: Some(super::test_fixtures::h264(width, height, 28.0, "ultrafast")),
        audio: audio.then(|| AudioPlan { codec: "aac".into(), bitrate_kbps: 96, sample_rate: 44100, channels: 2, loudness: None }),
        range: None,
        image: None,
        packaging: None,
        target_vmaf: None,
        audio_tracks: crate::types::AudioSelection::Main,
        tracks: Vec::new(),
    }
}

type Results = Vec<Result<Produced, MediaError>>;

fn run(input: &Path, targets: &[OutputTarget]) -> (Results, Vec<f64>, Vec<usize>) {
    let progress = Arc::new(Mutex::new(Vec::new()));
    let finished = Arc::new(Mutex::new(Vec::new()));
    let events: EventSink = {
        let (progress, finished) = (progress.clone(), finished.clone());
        Arc::new(move |event| match event {
            TranscodeEvent::Progress(p) => progress.lock().unwrap().push(p),
            TranscodeEvent::OutputFinished { index, .. } => finished.lock().unwrap().push(index),
            TranscodeEvent::FileReady { .. } => {}
        })
    };
    let results = transcode(input, targets, events, &AtomicBool::new(false), &DecodeLimits::unlimited());
    let progress = progress.lock().unwrap().clone();
    let finished = finished.lock().unwrap().clone();
    (results, progress, finished)
}

fn probed(path: &Path) -> MediaInfo {
    probe(path, &DecodeLimits::unlimited()).expect("output probes").0
}

#[test]
fn probe_describes_video_and_audio() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture(dir.path(), "in.mp4", &[]);
    let (info, metadata) = probe(&input, &DecodeLimits::unlimited()).unwrap();
    assert_eq!((info.width, info.height, info.rotation), (640, 360, 0));
    assert!(info.has_video && info.has_audio);
    assert_eq!((info.video_codec.as_str(), info.audio_codec.as_str()), ("h264", "aac"));
    assert!((info.duration - 2.0).abs() < 0.1, "duration {}", info.duration);
    assert!((info.fps - 25.0).abs() < 0.01);
    assert_eq!((info.sample_rate, info.channels), (48000, 1));
    let streams = metadata["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 2);
    assert_eq!(streams[0]["codec_type"], "video");
    assert_eq!(metadata["format"]["duration"].as_str().unwrap().len(), "2.000000".len());
}

#[test]
fn probe_rejects_what_is_not_media() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.mp4");
    std::fs::write(&junk, (0..65536u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect::<Vec<_>>()).unwrap();
    assert!(probe(&junk, &DecodeLimits::unlimited()).is_err());
    // Named so that a demuxer accepts it: it must still be refused.
    for name in ["junk.mp3", "junk.bin", "junk.txt"] {
        let path = dir.path().join(name);
        std::fs::write(&path, (0..200_000u32).map(|i| (i.wrapping_mul(2654435761).rotate_left(i % 31) >> 7) as u8).collect::<Vec<_>>()).unwrap();
        assert!(probe(&path, &DecodeLimits::unlimited()).is_err(), "{name} probed as media");
    }
    let input = fixture(dir.path(), "in.mp4", &[]);
    let bytes = std::fs::read(&input).unwrap();
    let truncated = dir.path().join("truncated.mp4");
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    assert!(probe(&truncated, &DecodeLimits::unlimited()).is_err(), "moov is at the end: a third of the file is unreadable");
}

#[test]
fn one_decode_feeds_every_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture(dir.path(), "in.mp4", &[]);
    let targets = vec![
        OutputTarget { plan: plan(320, 180, true), path: dir.path().join("a.mp4") },
        OutputTarget { plan: plan(160, 90, false), path: dir.path().join("b.mp4") },
    ];
    let (results, progress, finished) = run(&input, &targets);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(finished.len(), 2);
    assert_eq!(progress.last().copied(), Some(1.0));

    let a = probed(&targets[0].path);
    assert_eq!((a.width, a.height, a.video_codec.as_str()), (320, 180, "h264"));
    assert_eq!((a.audio_codec.as_str(), a.sample_rate, a.channels), ("aac", 44100, 2));
    assert!((a.duration - 2.0).abs() <= 0.1, "duration {}", a.duration);
    let b = probed(&targets[1].path);
    assert_eq!((b.width, b.height), (160, 90));
    assert!(!b.has_audio);
    assert!((b.duration - 2.0).abs() <= 0.1, "duration {}", b.duration);
}

#[test]
fn rotated_input_comes_out_upright() {
    let dir = tempfile::tempdir().unwrap();
    let plain = fixture(dir.path(), "plain.mp4", &[]);
    let rotated = dir.path().join("rotated.mp4");
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(&plain)
        .args(["-c", "copy", "-metadata:s:v:0", "rotate=90"])
        .arg(&rotated)
        .status()
        .unwrap();
    assert!(status.success());
    let info = probed(&rotated);
    assert_eq!((info.width, info.height), (640, 360));
    assert!(info.rotation == 90 || info.rotation == 270, "rotation {}", info.rotation);

    let target = OutputTarget { plan: plan(180, 320, true), path: dir.path().join("upright.mp4") };
    let (results, _, _) = run(&rotated, std::slice::from_ref(&target));
    assert!(results[0].is_ok(), "{results:?}");
    let out = probed(&target.path);
    assert_eq!((out.width, out.height, out.rotation), (180, 320, 0));
}

#[test]
fn a_failing_output_does_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture(dir.path(), "in.mp4", &[]);
    let mut broken = plan(320, 180, true);
    if let Some(video) = broken.video.as_mut() {
        video.codec = "no-such-codec".into();
    }
    let targets = vec![
        OutputTarget { plan: broken, path: dir.path().join("broken.mp4") },
        OutputTarget { plan: plan(320, 180, true), path: dir.path().join("fine.mp4") },
    ];
    let (results, _, finished) = run(&input, &targets);
    assert!(results[0].is_err());
    assert!(results[1].is_ok(), "{results:?}");
    assert_eq!(finished.len(), 2);
    assert_eq!(probed(&targets[1].path).width, 320);
}

#[test]
fn hevc_output_without_audio_from_silent_input() {
    let dir = tempfile::tempdir().unwrap();
    let input = ffmpeg_cli(
        dir.path(),
        "silent.mp4",
        &["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration=2", "-c:v", "libx264", "-preset", "ultrafast"],
        &[],
    );
    let info = probed(&input);
    assert!(info.has_video && !info.has_audio);
    let mut hevc = plan(256, 192, true); // asks for audio the input does not have
    if let Some(video) = hevc.video.as_mut() {
        video.codec = "hevc".into();
        video.fps = Some(15.0);
        video.gop = Some(30);
    }
    let target = OutputTarget { plan: hevc, path: dir.path().join("out.mp4") };
    let (results, _, _) = run(&input, std::slice::from_ref(&target));
    assert!(results[0].is_ok(), "{results:?}");
    let (codec, width, height, duration) = ffprobe_video(&target.path);
    assert_eq!((codec.as_str(), width, height), ("hevc", 256, 192));
    assert!((duration - 2.0).abs() <= 0.1, "duration {duration}");
    let out = probed(&target.path);
    assert!(!out.has_audio);
    assert!((out.fps - 15.0).abs() < 0.01, "fps {}", out.fps);
}

/// Which quadrant (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right) of a
/// frame's first picture is brightest, read back with the ffmpeg command.
fn bright_quadrant(path: &Path, width: usize, height: usize, extra: &[&str]) -> usize {
    let out = Command::new("ffmpeg")
        .args(["-v", "error"])
        .args(extra)
        .arg("-i")
        .arg(path)
        .args(["-frames:v", "1", "-vf", &format!("scale={width}:{height}"), "-f", "rawvideo", "-pix_fmt", "gray", "-"])
        .output()
        .expect("ffmpeg runs");
    assert_eq!(out.stdout.len(), width * height, "one gray frame");
    let mut sums = [0u64; 4];
    for (i, &v) in out.stdout.iter().enumerate() {
        let (x, y) = (i % width, i / width);
        sums[usize::from(y >= height / 2) * 2 + usize::from(x >= width / 2)] += u64::from(v);
    }
    (0..4).max_by_key(|&q| sums[q]).unwrap_or(0)
}

/// The engine turns pictures exactly as FFmpeg's own autorotation (and so players) do,
/// for both quarter turns.
#[test]
fn rotation_matches_ffmpeg_autorotate() {
    let dir = tempfile::tempdir().unwrap();
    let marked = ffmpeg_cli(
        dir.path(),
        "marked.mp4",
        &[
            "-f", "lavfi", "-i", "color=black:size=640x360:rate=25:duration=1,drawbox=x=0:y=0:w=200:h=120:color=white:t=fill",
            "-f", "lavfi", "-i", "sine=duration=1", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
        ],
        &[],
    );
    assert_eq!(bright_quadrant(&marked, 64, 36, &[]), 0);
    let mut seen = Vec::new();
    for tag in ["90", "270", "180"] {
        let name = format!("rotate{tag}.mp4");
        let rotated = ffmpeg_cli(dir.path(), &name, &["-i", marked.to_str().unwrap(), "-c", "copy", "-metadata:s:v:0", &format!("rotate={tag}")], &[]);
        let info = probed(&rotated);
        let (w, h) = if info.rotation % 180 == 0 { (320, 180) } else { (180, 320) };
        let target = OutputTarget { plan: plan(w, h, true), path: dir.path().join(format!("upright{tag}.mp4")) };
        let (results, _, _) = run(&rotated, std::slice::from_ref(&target));
        assert!(results[0].is_ok(), "{results:?}");
        let out = probed(&target.path);
        assert_eq!((out.width, out.height, out.rotation), (w, h, 0));
        assert!((out.duration - 1.0).abs() <= 0.1, "duration {}", out.duration);
        let reference = bright_quadrant(&rotated, w as usize / 4, h as usize / 4, &[]);
        assert_eq!(bright_quadrant(&target.path, w as usize / 4, h as usize / 4, &[]), reference, "rotate={tag}");
        seen.push(info.rotation);
    }
    seen.sort();
    assert_eq!(seen, vec![90, 180, 270]);
}

#[test]
fn metadata_is_ffprobe_shaped() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture(dir.path(), "in.mp4", &["-metadata", "title=Copra"]);
    let (_, metadata) = probe(&input, &DecodeLimits::unlimited()).unwrap();
    let video = &metadata["streams"][0];
    assert_eq!(video["codec_name"], "h264");
    assert_eq!(video["pix_fmt"], "yuv420p");
    assert_eq!(video["r_frame_rate"], "25/1");
    assert!(video["profile"].is_string());
    let audio = &metadata["streams"][1];
    assert_eq!(audio["codec_type"], "audio");
    assert_eq!(audio["sample_rate"], "48000");
    assert_eq!(audio["channel_layout"], "mono");
    assert_eq!(audio["profile"], "LC");
    let format = &metadata["format"];
    assert!(format["format_name"].as_str().unwrap().contains("mp4"));
    assert_eq!(format["nb_streams"], 2);
    assert!(format["size"].as_str().unwrap().parse::<u64>().unwrap() > 0);
    assert!(format["bit_rate"].as_str().unwrap().parse::<u64>().unwrap() > 0);
    assert_eq!(format["tags"]["title"], "Copra");
}

#[test]
fn truncated_faststart_file_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture(dir.path(), "in.mp4", &["-movflags", "+faststart"]);
    let bytes = std::fs::read(&input).unwrap();
    let truncated = dir.path().join("truncated.mp4");
    std::fs::write(&truncated, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let err = probe(&truncated, &DecodeLimits::unlimited()).expect_err("the index points past the end");
    assert!(matches!(err, MediaError::Corrupt(_)), "{err}");
    assert!(err.to_string().contains("truncated"), "{err}");
}

#[test]
fn unreadable_input_fails_every_output() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.mp4");
    std::fs::write(&junk, b"this is not a video at all, just some text").unwrap();
    let targets = vec![
        OutputTarget { plan: plan(320, 180, true), path: dir.path().join("a.mp4") },
        OutputTarget { plan: plan(160, 90, false), path: dir.path().join("b.mp4") },
    ];
    let (results, _, finished) = run(&junk, &targets);
    assert!(results.iter().all(Result::is_err), "{results:?}");
    assert_eq!(finished.len(), 2);
    assert!(!targets[0].path.exists() && !targets[1].path.exists());
}

#[test]
fn cancelling_stops_and_removes_partial_files() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture(dir.path(), "in.mp4", &[]);
    let target = OutputTarget { plan: plan(320, 180, true), path: dir.path().join("a.mp4") };
    let cancel = AtomicBool::new(true);
    let results = transcode(&input, std::slice::from_ref(&target), Arc::new(|_| {}), &cancel, &DecodeLimits::unlimited());
    assert!(matches!(results[0], Err(MediaError::Cancelled)), "{results:?}");
    assert!(!target.path.exists());
}

/// MPEG-TS starts its clock at 1.4 s; outputs start at zero like the ffmpeg command's.
#[test]
fn input_start_time_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture(dir.path(), "in.ts", &[]);
    let target = OutputTarget { plan: plan(320, 180, true), path: dir.path().join("out.mp4") };
    let (results, progress, _) = run(&input, std::slice::from_ref(&target));
    assert!(results[0].is_ok(), "{results:?}");
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
    let out = probed(&target.path);
    assert!((out.duration - 2.0).abs() <= 0.1, "duration {}", out.duration);
    let (_, _, _, duration) = ffprobe_video(&target.path);
    assert!((duration - 2.0).abs() <= 0.1, "ffprobe duration {duration}");
}

#[test]
fn bad_encoder_option_fails_only_its_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture(dir.path(), "in.mp4", &[]);
    let mut bad = plan(320, 180, true);
    if let Some(video) = bad.video.as_mut() {
        video.encoder_options.push(("profile".into(), "no-such-profile".into()));
    }
    let targets = vec![
        OutputTarget { plan: plan(160, 90, true), path: dir.path().join("fine.mp4") },
        OutputTarget { plan: bad, path: dir.path().join("bad.mp4") },
    ];
    let (results, _, finished) = run(&input, &targets);
    assert!(results[0].is_ok(), "{results:?}");
    assert!(matches!(&results[1], Err(MediaError::Encoder { codec, .. }) if codec == "libx264"), "{results:?}");
    assert_eq!(finished.len(), 2);
    assert!(!targets[1].path.exists());
    assert!((probed(&targets[0].path).duration - 2.0).abs() <= 0.1);
}

// ---- breadth: containers, codecs, pictures, ranges, colours ----

fn video_plan(codec: &str, width: u32, height: u32) -> VideoPlan {
    let (crf, bitrate, options): (Option<f32>, Option<u32>, Vec<(&str, &str)>) = match codec {
        "h264" | "hevc" => (Some(28.0), None, vec![("preset", "ultrafast")]),
        "vp9" => (Some(40.0), None, vec![("deadline", "realtime"), ("cpu-used", "8")]),
        "vp8" => (Some(30.0), Some(500), vec![("deadline", "realtime"), ("cpu-used", "8")]),
        "av1" => (Some(50.0), None, vec![("preset", "12")]),
        _ => (None, Some(500), vec![]),
    };
    let options = super::test_fixtures::options(&options);
    VideoPlan { bitrate_kbps: bitrate, crf, pix_fmt: "yuv420p".into(), encoder_options: options, ..super::test_fixtures::video_plan(codec, width, height) }
}

fn audio_plan(codec: &str) -> AudioPlan {
    let sample_rate = if codec == "opus" { 48000 } else { 44100 };
    AudioPlan { codec: codec.into(), bitrate_kbps: 96, sample_rate, channels: 2, loudness: None }
}

fn file_plan(container: &str, video: Option<VideoPlan>, audio: Option<AudioPlan>) -> OutputPlan {
    OutputPlan {
        output_type: if video.is_some() { OutputType::Video } else { OutputType::Audio },
        container: container.into(),
        extension: container.into(),
        mime_type: "application/octet-stream".into(),
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

/// Stream entries of a file, per ffprobe.
fn ffprobe_streams(path: &Path, entries: &str) -> Vec<serde_json::Value> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", entries, "-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ffprobe json");
    json["streams"].as_array().cloned().unwrap_or_default()
}

/// Every container/codec pair the format plugin offers, from one decode.
#[test]
fn every_container_and_codec_pair() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture(dir.path(), "in.mp4", &[]);
    let pairs: &[(&str, &str, &str)] = &[
        ("mp4", "h264", "aac"),
        ("mp4", "hevc", "mp3"),
        ("mp4", "av1", "opus"),
        ("mp4", "vp9", "aac"),
        ("mp4", "mpeg4", "aac"),
        ("webm", "vp9", "opus"),
        ("webm", "vp8", "vorbis"),
        ("webm", "av1", "opus"),
        ("mov", "h264", "aac"),
        ("mov", "hevc", "aac"),
        ("matroska", "h264", "flac"),
        ("matroska", "theora", "vorbis"),
        ("mpegts", "h264", "aac"),
        ("mpegts", "hevc", "mp3"),
        ("ogg", "theora", "vorbis"),
        ("ogg", "vp8", "opus"),
        ("avi", "mpeg4", "mp3"),
        ("flv", "h264", "aac"),
        ("3gp", "h264", "aac"),
    ];
    let targets: Vec<OutputTarget> = pairs
        .iter()
        .enumerate()
        .map(|(i, (container, video, audio))| OutputTarget {
            plan: file_plan(container, Some(video_plan(video, 320, 180)), Some(audio_plan(audio))),
            path: dir.path().join(format!("out{i}.{container}")),
        })
        .collect();
    let (results, _, _) = run(&input, &targets);
    for ((container, video, audio), (target, result)) in pairs.iter().zip(targets.iter().zip(&results)) {
        assert!(result.is_ok(), "{container} {video} {audio}: {result:?}");
        let streams = ffprobe_streams(&target.path, "stream=codec_type,codec_name,width,height");
        let codec = |kind: &str| streams.iter().find(|s| s["codec_type"] == kind).map(|s| s["codec_name"].as_str().unwrap_or("").to_string());
        let expected_video = if *video == "mpeg4" { "mpeg4" } else { video };
        assert_eq!(codec("video").as_deref(), Some(expected_video), "{container}");
        assert_eq!(codec("audio").as_deref(), Some(*audio), "{container}");
        let v = streams.iter().find(|s| s["codec_type"] == "video").unwrap();
        assert_eq!((v["width"].as_u64(), v["height"].as_u64()), (Some(320), Some(180)), "{container} {video}");
        let out = probed(&target.path);
        assert!((out.duration - 2.0).abs() <= 0.15, "{container} {video}: duration {}", out.duration);
        // Every frame is there, at the input's rate, whatever the format stores.
        let counted = Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries", "stream=nb_read_frames,r_frame_rate", "-of", "json"])
            .arg(&target.path)
            .output()
            .unwrap();
        let counted: serde_json::Value = serde_json::from_slice(&counted.stdout).unwrap();
        assert_eq!(counted["streams"][0]["nb_read_frames"], "50", "{container} {video}");
        assert_eq!(counted["streams"][0]["r_frame_rate"], "25/1", "{container} {video}");
    }
}

#[test]
fn audio_only_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture(dir.path(), "in.mp4", &[]);
    let cases: &[(&str, &str, u32, u32)] =
        &[("mp3", "mp3", 44100, 2), ("adts", "aac", 48000, 1), ("ipod", "aac", 44100, 2), ("ogg", "vorbis", 44100, 2), ("opus", "opus", 48000, 2), ("flac", "flac", 44100, 1), ("wav", "pcm_s16le", 22050, 2), ("ogg", "flac", 48000, 2)];
    let targets: Vec<OutputTarget> = cases
        .iter()
        .enumerate()
        .map(|(i, (container, codec, rate, channels))| OutputTarget {
            plan: file_plan(container, None, Some(AudioPlan { codec: codec.to_string(), bitrate_kbps: 128, sample_rate: *rate, channels: *channels, loudness: None })),
            path: dir.path().join(format!("a{i}.{container}")),
        })
        .collect();
    let (results, _, _) = run(&input, &targets);
    for ((container, codec, rate, channels), (target, result)) in cases.iter().zip(targets.iter().zip(&results)) {
        assert!(result.is_ok(), "{container} {codec}: {result:?}");
        let info = probed(&target.path);
        assert!(!info.has_video, "{container}");
        assert_eq!((info.audio_codec.as_str(), info.sample_rate, info.channels), (*codec, *rate, *channels), "{container}");
        assert!((info.duration - 2.0).abs() <= 0.1, "{container}: duration {}", info.duration);
    }
}

#[test]
fn offset_and_duration_cut_within_a_frame() {
    let dir = tempfile::tempdir().unwrap();
    let input = ffmpeg_cli(
        dir.path(),
        "long.mp4",
        &[
            "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=6",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=6",
            "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest",
        ],
        &[],
    );
    let mut trailer = file_plan("mp4", Some(video_plan("h264", 320, 240)), Some(audio_plan("aac")));
    trailer.range = Some(TimeRange { offset: 1.5, duration: Some(2.0) });
    let mut tail = file_plan("mp4", Some(video_plan("h264", 160, 120)), None);
    tail.range = Some(TimeRange { offset: 4.0, duration: None });
    let targets = vec![
        OutputTarget { plan: trailer, path: dir.path().join("trailer.mp4") },
        OutputTarget { plan: tail, path: dir.path().join("tail.mp4") },
    ];
    let (results, _, _) = run(&input, &targets);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let frames = |path: &Path| -> u64 {
        let streams = ffprobe_streams(path, "stream=nb_frames,codec_type");
        streams.iter().find(|s| s["codec_type"] == "video").and_then(|s| s["nb_frames"].as_str()?.parse().ok()).unwrap_or(0)
    };
    assert_eq!(frames(&targets[0].path), 50, "2 s at 25 fps");
    assert_eq!(frames(&targets[1].path), 50, "the last 2 s");
    let (_, _, _, duration) = ffprobe_video(&targets[0].path);
    assert!((duration - 2.0).abs() <= 0.04 + 0.03, "duration {duration}");
    // The trailer starts at 1.5 s of the input: testsrc2 draws its clock, so compare
    // the trailer's first picture with the input's picture at 1.5 s.
    let grab = |path: &Path, at: &str| -> Vec<u8> {
        Command::new("ffmpeg")
            .args(["-v", "error", "-ss", at, "-i"])
            .arg(path)
            .args(["-frames:v", "1", "-vf", "scale=64:48", "-f", "rawvideo", "-pix_fmt", "gray", "-"])
            .output()
            .expect("ffmpeg runs")
            .stdout
    };
    let (a, b) = (grab(&targets[0].path, "0"), grab(&input, "1.5"));
    let diff: u64 = a.iter().zip(&b).map(|(x, y)| u64::from(x.abs_diff(*y))).sum::<u64>() / a.len().max(1) as u64;
    assert!(diff < 12, "first trailer frame differs from input at 1.5 s by {diff}");
}

#[test]
fn thumbnails_and_square_crops() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture(dir.path(), "in.mp4", &[]);
    let pictures = |codec: &str, width: u32, height: u32, fit: Fit, times: Vec<f64>| OutputPlan {
        output_type: OutputType::Image,
        container: "image2".into(),
        extension: codec.into(),
        mime_type: "image/jpeg".into(),
        video: None,
        audio: None,
        range: None,
        image: Some(ImagePlan { codec: codec.into(), width, height, fit, times, sprite: None, encoder_options: vec![] }),
        packaging: None,
        target_vmaf: None,
        audio_tracks: crate::types::AudioSelection::Main,
        tracks: Vec::new(),
    };
    let targets = vec![
        OutputTarget { plan: pictures("mjpeg", 320, 180, Fit::Stretch, vec![0.25, 0.75, 1.25, 1.75]), path: dir.path().join("jpg") },
        OutputTarget { plan: pictures("png", 100, 100, Fit::Crop, vec![0.5, 1.5]), path: dir.path().join("png") },
        OutputTarget { plan: pictures("webp", 160, 90, Fit::Stretch, vec![1.0, 5.0]), path: dir.path().join("webp") },
    ];
    let (results, _, _) = run(&input, &targets);
    let expect = [(4, "mjpeg", 320, 180), (2, "png", 100, 100), (2, "webp", 160, 90)];
    for ((count, codec, width, height), result) in expect.into_iter().zip(&results) {
        let Ok(Produced::Images { files, tiles }) = result else { panic!("{result:?}") };
        assert_eq!(files.len(), count, "{codec}");
        assert!(tiles.is_empty());
        for file in files {
            let streams = ffprobe_streams(file, "stream=codec_name,width,height");
            assert_eq!(streams[0]["codec_name"], codec);
            assert_eq!((streams[0]["width"].as_u64(), streams[0]["height"].as_u64()), (Some(width), Some(height)), "{}", file.display());
        }
    }
    // Pictures at different times differ (testsrc2 moves).
    let Ok(Produced::Images { files, .. }) = &results[0] else { unreachable!() };
    assert_ne!(std::fs::read(&files[0]).unwrap(), std::fs::read(&files[3]).unwrap());
}

#[test]
fn sprites_tile_pictures_and_map_them() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture(dir.path(), "in.mp4", &[]);
    let times: Vec<f64> = (0..7).map(|i| f64::from(i) * 0.25).collect();
    let plan = OutputPlan {
        output_type: OutputType::Image,
        container: "image2".into(),
        extension: "jpg".into(),
        mime_type: "image/jpeg".into(),
        video: None,
        audio: None,
        range: None,
        image: Some(ImagePlan {
            codec: "mjpeg".into(),
            width: 80,
            height: 45,
            fit: Fit::Stretch,
            times,
            sprite: Some(SpritePlan { columns: 2, rows: 2 }),
            encoder_options: vec![],
        }),
        packaging: None,
        target_vmaf: None,
        audio_tracks: crate::types::AudioSelection::Main,
        tracks: Vec::new(),
    };
    let target = OutputTarget { plan, path: dir.path().join("sprites") };
    let (results, _, _) = run(&input, std::slice::from_ref(&target));
    let Ok(Produced::Images { files, tiles }) = &results[0] else { panic!("{results:?}") };
    assert_eq!(files.len(), 2, "7 pictures in sheets of 4");
    for file in files {
        let streams = ffprobe_streams(file, "stream=width,height");
        assert_eq!((streams[0]["width"].as_u64(), streams[0]["height"].as_u64()), (Some(160), Some(90)));
    }
    assert_eq!(tiles.len(), 7);
    assert_eq!((tiles[3].sheet, tiles[3].x, tiles[3].y), (0, 80, 45));
    assert_eq!((tiles[4].sheet, tiles[4].x, tiles[4].y), (1, 0, 0));
    assert_eq!((tiles[0].start, tiles[0].end), (0.0, 0.25));
    assert!((tiles[6].end - 2.0).abs() < 0.1, "the last tile lasts to the end: {}", tiles[6].end);
}

#[test]
fn animated_gif_with_a_palette() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture(dir.path(), "in.mp4", &[]);
    let mut video = video_plan("gif", 160, 90);
    video.fps = Some(10.0);
    video.pix_fmt = "pal8".into();
    let mut plan = file_plan("gif", Some(video), None);
    plan.output_type = OutputType::Image;
    plan.range = Some(TimeRange { offset: 0.5, duration: Some(1.0) });
    let target = OutputTarget { plan, path: dir.path().join("clip.gif") };
    let (results, _, _) = run(&input, std::slice::from_ref(&target));
    assert!(results[0].is_ok(), "{results:?}");
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-show_entries", "stream=codec_name,width,height,nb_read_frames", "-of", "json"])
        .arg(&target.path)
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let stream = &json["streams"][0];
    assert_eq!(stream["codec_name"], "gif");
    assert_eq!((stream["width"].as_u64(), stream["height"].as_u64()), (Some(160), Some(90)));
    assert_eq!(stream["nb_read_frames"], "10", "1 s at 10 fps");

    // The palette (made by a first pass over the clip) fits the clip: the GIF is close
    // to the source's same frames (a palette of the wrong colours is below 20 dB).
    let psnr = Command::new("ffmpeg")
        .args(["-hide_banner", "-i"])
        .arg(&target.path)
        .args(["-ss", "0.5", "-t", "1", "-i"])
        .arg(&input)
        .args(["-lavfi", "[1:v]fps=10,scale=160:90,format=rgb24[ref];[0:v]format=rgb24[gif];[gif][ref]psnr", "-f", "null", "-"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&psnr.stderr);
    let average: f64 = log
        .split("average:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no PSNR in {log}"));
    assert!(average > 28.0, "the GIF is {average} dB from its source");
}

#[test]
fn pixel_formats_and_forced_keyframes() {
    let dir = tempfile::tempdir().unwrap();
    let input = ffmpeg_cli(
        dir.path(),
        "in.mp4",
        &["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=5", "-c:v", "libx264", "-preset", "ultrafast"],
        &[],
    );
    let with = |codec: &str, pix_fmt: &str| {
        let mut plan = video_plan(codec, 320, 240);
        plan.pix_fmt = pix_fmt.into();
        plan
    };
    let mut aligned = video_plan("h264", 320, 240);
    aligned.keyframe_interval = Some(2.0);
    let cases = [
        ("h264", "yuv420p10le"),
        ("h264", "yuv422p"),
        ("h264", "yuv444p"),
        ("hevc", "yuv420p10le"),
        ("vp9", "yuv444p"),
    ];
    let mut targets: Vec<OutputTarget> = cases
        .iter()
        .enumerate()
        .map(|(i, (codec, pix))| OutputTarget { plan: file_plan("matroska", Some(with(codec, pix)), None), path: dir.path().join(format!("p{i}.mkv")) })
        .collect();
    targets.push(OutputTarget { plan: file_plan("mp4", Some(aligned), None), path: dir.path().join("aligned.mp4") });
    let (results, _, _) = run(&input, &targets);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    for ((codec, pix), target) in cases.iter().zip(&targets) {
        let streams = ffprobe_streams(&target.path, "stream=codec_name,pix_fmt");
        assert_eq!((streams[0]["codec_name"].as_str(), streams[0]["pix_fmt"].as_str()), (Some(*codec), Some(*pix)));
    }
    // Keyframes exactly at 0, 2 and 4 s, and nowhere else.
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time,flags", "-of", "csv=p=0"])
        .arg(&targets[5].path)
        .output()
        .unwrap();
    let keys: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains('K'))
        .filter_map(|l| l.split(',').next()?.parse().ok())
        .collect();
    assert_eq!(keys, vec![0.0, 2.0, 4.0]);
}

#[test]
fn hdr_input_is_tone_mapped_to_sdr() {
    let dir = tempfile::tempdir().unwrap();
    let input = ffmpeg_cli(
        dir.path(),
        "pq.mkv",
        &[
            "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=1",
            "-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p10le",
            "-x265-params", "log-level=error:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc",
            "-color_primaries", "bt2020", "-color_trc", "smpte2084", "-colorspace", "bt2020nc",
        ],
        &[],
    );
    let info = probed(&input);
    assert!(info.is_hdr(), "fixture is PQ: {info:?}");
    assert_eq!(info.color_primaries, "bt2020");
    let mut sdr = video_plan("h264", 320, 240);
    sdr.tone_map = true;
    let target = OutputTarget { plan: file_plan("mp4", Some(sdr), None), path: dir.path().join("sdr.mp4") };
    let (results, _, _) = run(&input, std::slice::from_ref(&target));
    assert!(results[0].is_ok(), "{results:?}");
    let streams = ffprobe_streams(&target.path, "stream=pix_fmt,color_transfer,color_primaries,color_space");
    assert_eq!(streams[0]["pix_fmt"], "yuv420p");
    assert_eq!(streams[0]["color_transfer"], "bt709");
    assert_eq!(streams[0]["color_primaries"], "bt709");
}

#[test]
fn unknown_encoder_option_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture(dir.path(), "in.mp4", &[]);
    let mut bad = plan(320, 180, false);
    if let Some(video) = bad.video.as_mut() {
        video.encoder_options.push(("no-such-option".into(), "1".into()));
    }
    let target = OutputTarget { plan: bad, path: dir.path().join("bad.mp4") };
    let (results, _, _) = run(&input, std::slice::from_ref(&target));
    let err = results[0].as_ref().expect_err("refused");
    assert!(err.to_string().contains("no-such-option"), "{err}");
}

// ---- adaptive streaming ----

fn ladder(fmp4: bool, dash: bool) -> OutputPlan {
    let rung = |name: &str, width: u32, height: u32, maxrate: &str| {
        let mut video = video_plan("h264", width, height);
        video.keyframe_interval = Some(1.0);
        video.encoder_options.push(("maxrate".into(), maxrate.into()));
        video.encoder_options.push(("bufsize".into(), maxrate.into()));
        crate::types::VariantPlan { name: name.into(), video: Some(video), audio: Some(AudioPlan { codec: "aac".into(), bitrate_kbps: 96, sample_rate: 48000, channels: 2, loudness: None }) }
    };
    OutputPlan {
        output_type: OutputType::Httpstream,
        container: "httpstream".into(),
        extension: "m3u8".into(),
        mime_type: "application/vnd.apple.mpegurl".into(),
        video: None,
        audio: None,
        range: None,
        image: None,
        packaging: Some(crate::types::StreamPlan {
            // 854x480 is not exactly 16:9: DASH needs it to display as the others do.
            variants: vec![rung("360p", 640, 360, "800k"), rung("240p", 426, 240, "400k"), rung("180p", 320, 180, "300k")],
            segment_duration: 2.0,
            hls: Some(crate::types::HlsPlan { fmp4 }),
            dash,
        }),
        target_vmaf: None,
        audio_tracks: crate::types::AudioSelection::Main,
        tracks: Vec::new(),
    }
}

/// Key frame times of a playlist's (or file's) video, per ffprobe.
fn keyframe_times(path: &Path) -> Vec<f64> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time,flags", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains('K'))
        .filter_map(|l| l.split(',').next()?.parse::<f64>().ok())
        .map(|t| (t * 1000.0).round() / 1000.0)
        .collect()
}

#[test]
fn ladder_packaged_as_hls_and_dash_from_one_encode() {
    let dir = tempfile::tempdir().unwrap();
    let input = ffmpeg_cli(
        dir.path(),
        "in.mp4",
        &[
            "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=5",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=5",
            "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest",
        ],
        &[],
    );
    for (fmp4, dash) in [(true, true), (false, false)] {
        let out = dir.path().join(format!("pkg-{fmp4}"));
        let target = OutputTarget { plan: ladder(fmp4, dash), path: out.clone() };
        let ready = Arc::new(Mutex::new(Vec::new()));
        let events: EventSink = {
            let ready = ready.clone();
            Arc::new(move |event| {
                if let TranscodeEvent::FileReady { path, .. } = event {
                    ready.lock().unwrap().push(path);
                }
            })
        };
        let results = transcode(&input, std::slice::from_ref(&target), events, &AtomicBool::new(false), &DecodeLimits::unlimited());
        let Ok(Produced::Package(package)) = &results[0] else { panic!("{results:?}") };
        assert_eq!(package.hls_master.as_deref(), Some(Path::new("hls/master.m3u8")));
        assert_eq!(package.dash_manifest.is_some(), dash);
        // Masters come last, after every media playlist and segment.
        let masters = if dash { 2 } else { 1 };
        let tail: Vec<_> = package.files.iter().rev().take(masters).filter_map(|p| p.file_name()?.to_str()).collect();
        assert!(tail.iter().all(|n| *n == "master.m3u8" || *n == "master.mpd"), "{:?}", package.files);

        // Segments were announced while encoding, under their final names, and exist.
        let ready = ready.lock().unwrap().clone();
        let extension = if fmp4 { "m4s" } else { "ts" };
        assert!(ready.iter().filter(|p| p.extension().is_some_and(|e| e == extension)).count() >= 6, "{ready:?}");
        assert!(ready.iter().all(|p| p.exists() && !p.to_string_lossy().ends_with(".tmp")), "{ready:?}");

        let master = std::fs::read_to_string(out.join("hls/master.m3u8")).unwrap();
        assert!(master.contains("RESOLUTION=640x360") && master.contains("RESOLUTION=320x180"), "{master}");
        assert!(master.contains("CODECS=\"avc1.") && master.contains("mp4a.40.2"), "{master}");
        assert!(master.contains("FRAME-RATE=25.000") && master.contains("AVERAGE-BANDWIDTH="), "{master}");
        // Every rung keyframes at the same instants: 0, 1, 2, 3, 4 s.
        let k360 = keyframe_times(&out.join("hls/360p/index.m3u8"));
        let k180 = keyframe_times(&out.join("hls/180p/index.m3u8"));
        let k240 = keyframe_times(&out.join("hls/240p/index.m3u8"));
        assert_eq!(k360, k180);
        assert_eq!(k360, k240);
        let first = k360[0];
        assert_eq!(k360.iter().map(|t| t - first).collect::<Vec<_>>(), vec![0.0, 1.0, 2.0, 3.0, 4.0]);
        // ffprobe reads the whole master playlist: both rungs and the audio.
        let streams = ffprobe_streams(&out.join("hls/master.m3u8"), "stream=codec_type,width");
        assert!(streams.iter().filter(|s| s["codec_type"] == "video").count() >= 3, "{streams:?}");
        assert!(streams.iter().any(|s| s["codec_type"] == "audio"), "{streams:?}");
        if dash {
            let mpd = std::fs::read_to_string(out.join("dash/master.mpd")).unwrap();
            assert_eq!(mpd.matches("<Representation ").count(), 4, "{mpd}");
            assert_eq!(mpd.matches("<AdaptationSet ").count(), 2, "{mpd}");
            assert!(!mpd.contains("bandwidth=\"0\""), "{mpd}");
        }
    }
}

//! Media engine tests on small inputs generated with FFmpeg's `testsrc2` and `sine`
//! (the `ffmpeg` command makes the fixtures; the engine under test never calls it).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;

use super::*;
use crate::types::{AudioPlan, MediaInfo, OutputPlan, OutputType, VideoPlan};

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
        video: Some(VideoPlan {
            codec: "h264".into(),
            width,
            height,
            fps: None,
            bitrate_kbps: None,
            crf: Some(28.0),
            pix_fmt: "yuv420p".into(),
            gop: None,
            encoder_options: vec![("preset".into(), "ultrafast".into())],
        }),
        audio: audio.then(|| AudioPlan { codec: "aac".into(), bitrate_kbps: 96, sample_rate: 44100, channels: 2 }),
    }
}

fn run(input: &Path, targets: &[OutputTarget]) -> (Vec<Result<(), MediaError>>, Vec<f64>, Vec<usize>) {
    let mut progress = Vec::new();
    let mut finished = Vec::new();
    let results = transcode(
        input,
        targets,
        &mut |event| match event {
            TranscodeEvent::Progress(p) => progress.push(p),
            TranscodeEvent::OutputFinished { index, .. } => finished.push(index),
        },
        &AtomicBool::new(false),
    );
    (results, progress, finished)
}

fn probed(path: &Path) -> MediaInfo {
    probe(path).expect("output probes").0
}

#[test]
fn probe_describes_video_and_audio() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture(dir.path(), "in.mp4", &[]);
    let (info, metadata) = probe(&input).unwrap();
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
    assert!(probe(&junk).is_err());
    // Named so that a demuxer accepts it: it must still be refused.
    for name in ["junk.mp3", "junk.bin", "junk.txt"] {
        let path = dir.path().join(name);
        std::fs::write(&path, (0..200_000u32).map(|i| (i.wrapping_mul(2654435761).rotate_left(i % 31) >> 7) as u8).collect::<Vec<_>>()).unwrap();
        assert!(probe(&path).is_err(), "{name} probed as media");
    }
    let input = fixture(dir.path(), "in.mp4", &[]);
    let bytes = std::fs::read(&input).unwrap();
    let truncated = dir.path().join("truncated.mp4");
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    assert!(probe(&truncated).is_err(), "moov is at the end: a third of the file is unreadable");
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
    let (_, metadata) = probe(&input).unwrap();
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
    let err = probe(&truncated).expect_err("the index points past the end");
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
    let results = transcode(&input, std::slice::from_ref(&target), &mut |_| {}, &cancel);
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

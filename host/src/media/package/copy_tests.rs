//! [`package_encoded`] against the encoding packager: a ladder encoded in chunks (as an
//! ultrafast job does) and packaged from its pieces gives the same files, playlists and
//! keyframes as the ladder packaged from one encode.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::media::{self, OutputTarget, Produced};
use crate::types::{HlsPlan, OutputPlan, OutputType, StreamPlan, VariantPlan, VideoPlan};

fn rung(name: &str, width: u32, height: u32) -> VariantPlan {
    let video = VideoPlan { fps: Some(25.0), keyframe_interval: Some(1.0), ..crate::media::test_fixtures::h264(width, height, 28.0, "ultrafast") };
    let audio = crate::media::test_fixtures::aac(96, 48000);
    VariantPlan { name: name.into(), video: Some(video), audio: Some(audio) }
}

fn keyframes(path: &Path) -> Vec<String> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time,flags", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.contains('K')).map(str::to_string).collect()
}

/// The master playlist without its measured bandwidths.
fn described(master: &str) -> String {
    master.lines().map(|l| l.split(',').filter(|f| !f.contains("BANDWIDTH=")).collect::<Vec<_>>().join(",")).collect::<Vec<_>>().join("\n")
}

#[test]
fn a_ladder_encoded_in_chunks_packages_as_one_encode_does() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.mp4");
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=6"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=6"])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-c:a", "aac", "-shortest"])
        .arg(&input)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success());
    let plan = StreamPlan { variants: vec![rung("360p", 640, 360), rung("180p", 320, 180)], segment_duration: 2.0, hls: Some(HlsPlan { fmp4: false }), dash: true };

    // One encode, as a normal job packages.
    let normal = dir.path().join("normal");
    let output = OutputPlan {
        output_type: OutputType::Httpstream,
        container: "httpstream".into(),
        extension: "m3u8".into(),
        mime_type: "application/vnd.apple.mpegurl".into(),
        video: None,
        audio: None,
        range: None,
        image: None,
        packaging: Some(plan.clone()),
        target_vmaf: None,
        audio_tracks: crate::types::AudioSelection::Main,
        tracks: Vec::new(),
    };
    let target = OutputTarget { plan: output, path: normal.clone() };
    let results = media::transcode(&input, std::slice::from_ref(&target), Arc::new(|_| {}), &AtomicBool::new(false), &media::DecodeLimits::unlimited());
    let Ok(Produced::Package(one)) = &results[0] else { panic!("{results:?}") };

    // In chunks of about 2 s, cut on the segment boundaries; the audio once.
    let ranges = media::chunk_ranges_aligned(&input, 2.0, &[2.0, 1.0], &media::DecodeLimits::unlimited()).unwrap();
    assert_eq!(ranges.len(), 3, "{ranges:?}");
    let ladder = media::ladder(&plan).unwrap();
    assert_eq!((ladder.video.len(), ladder.audio.len()), (2, 1), "one audio rendition for both rungs");
    let mut video: Vec<Vec<PathBuf>> = vec![Vec::new(); ladder.video.len()];
    for (c, range) in ranges.iter().enumerate() {
        let pieces: Vec<PathBuf> = (0..ladder.video.len()).map(|r| dir.path().join(format!("c{c}-r{r}.nut"))).collect();
        media::encode_video_chunk(&input, false, *range, &ladder.video, &pieces, &|_| {}, &AtomicBool::new(false), &media::DecodeLimits::unlimited()).unwrap();
        for (rung, piece) in video.iter_mut().zip(pieces) {
            rung.push(piece);
        }
    }
    let audio = vec![dir.path().join("audio.nut")];
    media::encode_audio(&input, &ladder.audio, &audio, &AtomicBool::new(false), &media::DecodeLimits::unlimited()).unwrap();

    // Renditions that do not match the plan are refused, and leave nothing behind.
    let refused = dir.path().join("refused");
    let err = media::package_encoded(&video[..1], &audio, &plan, &refused, &AtomicBool::new(false)).unwrap_err();
    assert!(err.to_string().contains("renditions"), "{err}");
    assert!(!refused.exists());

    let chunked = dir.path().join("chunked");
    let made = media::package_encoded(&video, &audio, &plan, &chunked, &AtomicBool::new(false)).unwrap();
    assert_eq!(made.files, one.files, "the same segments, playlists and manifests");
    assert_eq!((made.hls_master.as_deref(), made.dash_manifest.as_deref()), (Some(Path::new("hls/master.m3u8")), Some(Path::new("dash/master.mpd"))));
    let read = |base: &Path, file: &str| std::fs::read_to_string(base.join(file)).unwrap();
    for playlist in ["hls/360p/index.m3u8", "hls/180p/index.m3u8", "hls/audio/index.m3u8"] {
        assert_eq!(read(&chunked, playlist), read(&normal, playlist), "{playlist}");
    }
    assert_eq!(described(&read(&chunked, "hls/master.m3u8")), described(&read(&normal, "hls/master.m3u8")));
    for rung in ["360p", "180p"] {
        let playlist = format!("hls/{rung}/index.m3u8");
        let keys = keyframes(&chunked.join(&playlist));
        assert_eq!(keys.len(), 6, "a keyframe a second, joins included: {keys:?}");
        assert_eq!(keys, keyframes(&normal.join(&playlist)), "{rung}");
    }
}

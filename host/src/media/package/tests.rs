use super::*;
use super::manifest::{master_playlist, set_bandwidth};
use super::muxers::rung_sar;

fn rendition(name: &str, codec: &str, size: Option<(u32, u32)>) -> Rendition {
    Rendition {
        name: name.into(),
        codec: Some(codec.into()),
        size,
        frame_rate: size.map(|_| 25.0),
        channels: if size.is_none() { Some(2) } else { None },
        language: None,
        title: None,
        group: None,
    }
}

#[test]
fn alternate_audio_is_one_group_of_languages() {
    let track = |name: &str, language: &str, title: Option<&str>| Rendition {
        language: Some(language.into()),
        title: title.map(String::from),
        group: Some(1),
        ..rendition(name, "mp4a.40.2", None)
    };
    let renditions = [rendition("720p", "avc1.64001f", Some((1280, 720))), track("audio-en", "en", Some("English")), track("audio-fr", "fr", None)];
    let text = master_playlist(&renditions, &[(Some(0), Some(1))], &[(3_000_000, 2_000_000), (130_000, 128_000), (140_000, 129_000)], false);
    let media: Vec<&str> = text.lines().filter(|l| l.starts_with("#EXT-X-MEDIA:")).collect();
    assert_eq!(
        media,
        [
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio-audio-en\",LANGUAGE=\"en\",NAME=\"English\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio-en/index.m3u8\"",
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio-audio-en\",LANGUAGE=\"fr\",NAME=\"fr\",DEFAULT=NO,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio-fr/index.m3u8\"",
        ]
    );
    // The variant's bandwidth holds with the larger alternate.
    assert!(text.contains("BANDWIDTH=3140000,AVERAGE-BANDWIDTH=2129000,"), "{text}");
}

#[test]
fn master_lists_variants_with_their_audio_group() {
    let renditions =
        [rendition("720p", "avc1.64001f", Some((1280, 720))), rendition("360p", "avc1.64001e", Some((640, 360))), rendition("audio", "mp4a.40.2", None)];
    let text = master_playlist(&renditions, &[(Some(0), Some(2)), (Some(1), Some(2))], &[(3_000_000, 2_000_000), (900_000, 600_000), (130_000, 128_000)], true);
    assert_eq!(
        text,
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n\
         #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio-audio\",NAME=\"audio\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio/index.m3u8\"\n\
         #EXT-X-STREAM-INF:BANDWIDTH=3130000,AVERAGE-BANDWIDTH=2128000,RESOLUTION=1280x720,FRAME-RATE=25.000,CODECS=\"avc1.64001f,mp4a.40.2\",AUDIO=\"audio-audio\"\n720p/index.m3u8\n\
         #EXT-X-STREAM-INF:BANDWIDTH=1030000,AVERAGE-BANDWIDTH=728000,RESOLUTION=640x360,FRAME-RATE=25.000,CODECS=\"avc1.64001e,mp4a.40.2\",AUDIO=\"audio-audio\"\n360p/index.m3u8\n"
    );
}

#[test]
fn an_audio_only_variant_is_its_own_stream() {
    let renditions = [rendition("360p", "avc1.64001e", Some((640, 360))), rendition("audio", "mp4a.40.2", None)];
    let text = master_playlist(&renditions, &[(Some(0), Some(1)), (None, Some(1))], &[(900_000, 600_000), (70_000, 64_000)], false);
    let last = text.lines().rev().take(2).collect::<Vec<_>>();
    assert_eq!(last, ["audio/index.m3u8", "#EXT-X-STREAM-INF:BANDWIDTH=70000,AVERAGE-BANDWIDTH=64000,CODECS=\"mp4a.40.2\""]);
    assert_eq!(text.matches("#EXT-X-MEDIA:").count(), 1);
}

#[test]
fn meter_peak_and_average() {
    let mut meter = Meter::default();
    // 6 s segments: 600 kB in the first, 300 kB in a last one of 3 s.
    meter.add(600_000, 0.0, 0.04, 6.0);
    meter.add(300_000, 6.0, 3.0, 6.0);
    let (peak, average) = meter.rates(6.0, 1.0);
    assert_eq!(peak, 800_000);
    assert_eq!(average, 800_000);
    let (peak, _) = meter.rates(6.0, 1.1);
    assert_eq!(peak, 880_000);
}

#[test]
fn rungs_display_at_the_top_rungs_aspect() {
    assert_eq!(rung_sar((1280, 720), (854, 480)), Rational::new(1280, 1281));
    assert_eq!(rung_sar((1280, 720), (640, 360)), Rational::new(1, 1));
    assert_eq!(rung_sar((1280, 720), (1280, 720)), Rational::new(1, 1));
    // The display aspect, width × sar / height, is the top rung's exactly.
    let sar = rung_sar((1920, 1080), (426, 240));
    assert_eq!(426 * i64::from(sar.numerator()) * 1080, 240 * i64::from(sar.denominator()) * 1920);
}

#[test]
fn bandwidth_is_set_per_representation() {
    let mpd = r#"<Representation id="0" mimeType="video/mp4" bandwidth="3500000" width="1280"><Representation id="1" mimeType="audio/mp4" bandwidth="128000">"#;
    let out = set_bandwidth(&set_bandwidth(mpd, 1, 131_000), 0, 2_900_000);
    assert_eq!(out, r#"<Representation id="0" mimeType="video/mp4" bandwidth="2900000" width="1280"><Representation id="1" mimeType="audio/mp4" bandwidth="131000">"#);
    assert_eq!(set_bandwidth(r#"<Representation id="2" codecs="x">"#, 2, 5), r#"<Representation id="2" bandwidth="5" codecs="x">"#);
}

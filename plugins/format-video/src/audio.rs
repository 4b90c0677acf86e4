//! The audio part of a format string (`aac_128k_44100_stereo`, `none`) and the audio
//! plan it becomes. Sample rates and bitrates are checked against what each encoder
//! accepts, so an unsupported one is a 400 at submit time, not a failed job.

use copra_sdk::Error;
use copra_sdk::format::{AudioPlan, MediaInfo};

use crate::audio_codecs::{AudioCodec, SAMPLE_RATES};
use crate::containers::{Container, list};
use crate::grammar::{kbps, numbers};

use AudioCodec::*;

/// Sample rates a container further restricts for a codec (FLV stores MP3 at 44.1 kHz
/// and its halves only).
fn container_rates(container: &Container, codec: AudioCodec) -> Option<&'static [u32]> {
    (container.muxer == "flv" && codec == Mp3).then_some(&[11025, 22050, 44100][..])
}

/// The parsed audio part.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioSpec {
    pub codec: AudioCodec,
    pub bitrate_kbps: Option<u32>,
    pub sample_rate: Option<u32>,
    pub channels: Option<u32>,
}

impl AudioSpec {
    pub fn default_for(container: &Container) -> Self {
        AudioSpec { codec: container.audio_codecs[0], bitrate_kbps: None, sample_rate: None, channels: None }
    }

    /// The plan for an input. `default_rate` replaces the codec's default sample rate
    /// (ladders use 48 kHz throughout).
    pub fn plan(&self, input: &MediaInfo, default_rate: Option<u32>) -> AudioPlan {
        let lossless_rate = if SAMPLE_RATES.contains(&input.sample_rate) { input.sample_rate } else { 48000 };
        let codec_default = match self.codec {
            Opus => 48000,
            // Lossless outputs keep the input's rate when it is a standard one.
            Flac | Pcm => lossless_rate,
            Aac | Vorbis | Mp3 => 44100,
        };
        let sample_rate = self.sample_rate.or(default_rate.filter(|r| self.codec.sample_rates().contains(r))).unwrap_or(codec_default);
        // Mono stays mono; everything else (stereo, 5.1, unknown) becomes stereo.
        let channels = self.channels.unwrap_or(if input.channels == 1 { 1 } else { 2 });
        let wanted = self.bitrate_kbps.unwrap_or(self.codec.default_bitrate());
        // `check` refused what fits no input; what only the input's channels rule out
        // (vorbis_32k of a stereo input) is brought to the nearest the encoder takes.
        let bitrate_kbps = self.codec.bitrates(sample_rate, channels).map_or(0, |(lo, hi)| wanted.clamp(lo, hi));
        AudioPlan { codec: self.codec.name().into(), bitrate_kbps, sample_rate, channels, loudness: None }
    }
}

/// What an audio part asked for: an audio stream, or none at all.
#[derive(Debug, Clone, PartialEq)]
pub enum Audio {
    Keep(AudioSpec),
    Drop,
}

/// Parse audio items (`aac`, `128k`, `44100`, `mono`, `none`) for a container. `none`
/// is only allowed where a video stream remains (`allow_none`).
pub fn parse<'a>(items: impl Iterator<Item = &'a str>, container: &Container, allow_none: bool, format: &str) -> Result<Audio, Error> {
    let mut codec = None;
    let mut bitrate = None;
    let mut rate = None;
    let mut channels = None;
    let mut none = false;
    let mut count = 0;
    for item in items {
        count += 1;
        let twice = |what: &str| Error::format(format!("The audio {what} is given twice ('{item}') in format '{format}'."));
        if item == "none" && allow_none {
            none = true;
        } else if let Some(c) = AudioCodec::from_item(item) {
            if codec.replace(c).is_some() {
                return Err(twice("codec"));
            }
        } else if matches!(item, "mono" | "stereo") {
            if channels.replace(if item == "mono" { 1 } else { 2 }).is_some() {
                return Err(twice("channel layout"));
            }
        } else if let Some(k) = kbps(item) {
            if bitrate.replace(k).is_some() {
                return Err(twice("bitrate"));
            }
        } else if let Some(r) = item.parse::<u32>().ok().filter(|r| SAMPLE_RATES.contains(r)) {
            if rate.replace(r).is_some() {
                return Err(twice("sample rate"));
            }
        } else if item.parse::<u32>().is_ok() {
            return Err(Error::format(format!(
                "The sample rate '{item}' in format '{format}' is not supported; use one of {}.",
                numbers(SAMPLE_RATES)
            )));
        } else {
            return Err(Error::format(format!("Unknown audio parameter '{item}' in format '{format}'.")));
        }
    }
    if none {
        if count > 1 {
            return Err(Error::format(format!("The audio 'none' in format '{format}' cannot be combined with other audio parameters.")));
        }
        return Ok(Audio::Drop);
    }
    let codec = codec.unwrap_or(container.audio_codecs[0]);
    if !container.audio_codecs.contains(&codec) {
        return Err(Error::format(format!(
            "The container '{}' cannot hold {} audio; it takes {}.",
            container.name(),
            codec.name(),
            list(container.audio_codecs, AudioCodec::name)
        )));
    }
    if let Some(r) = rate {
        let allowed = container_rates(container, codec).unwrap_or(codec.sample_rates());
        if !allowed.contains(&r) {
            return Err(Error::format(format!(
                "The sample rate {r} is not available for {} in '{}'; use one of {}.",
                codec.name(),
                container.name(),
                numbers(allowed)
            )));
        }
    }
    if let Some(k) = bitrate {
        match codec.bitrate_bounds(rate, channels) {
            None => return Err(Error::format(format!("{} is lossless and takes no bitrate ('{k}k' in format '{format}').", codec.name()))),
            Some((lo, hi)) if !(lo..=hi).contains(&k) => {
                let at = match (rate, channels) {
                    (Some(r), Some(c)) => format!(" at {r} Hz {}", if c == 1 { "mono" } else { "stereo" }),
                    (Some(r), None) => format!(" at {r} Hz"),
                    _ => String::new(),
                };
                return Err(Error::format(format!("The audio bitrate '{k}k' for {}{at} must be between {lo}k and {hi}k.", codec.name())));
            }
            Some(_) => {}
        }
    }
    let spec = AudioSpec { codec, bitrate_kbps: bitrate, sample_rate: rate, channels };
    Ok(Audio::Keep(spec))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::{AUDIO, VIDEO};

    fn container(name: &str) -> &'static Container {
        VIDEO.iter().chain(AUDIO).find(|c| c.names.contains(&name)).unwrap()
    }

    fn audio(part: &str, c: &str) -> Result<Audio, Error> {
        parse(part.split('_').filter(|i| !i.is_empty()), container(c), true, part)
    }

    fn spec(part: &str, c: &str) -> AudioSpec {
        match audio(part, c).unwrap() {
            Audio::Keep(s) => s,
            Audio::Drop => panic!("dropped"),
        }
    }

    #[test]
    fn items_in_any_order() {
        let s = spec("48000_mono_96k_aac", "mp4");
        assert_eq!(s, AudioSpec { codec: Aac, bitrate_kbps: Some(96), sample_rate: Some(48000), channels: Some(1) });
        assert_eq!(spec("", "webm").codec, Opus);
        assert_eq!(spec("", "ogv").codec, Vorbis);
        assert_eq!(spec("", "avi").codec, Mp3);
        assert_eq!(spec("flac", "mkv").codec, Flac);
        assert_eq!(spec("pcm", "wav").codec, Pcm);
        assert_eq!(audio("none", "mp4").unwrap(), Audio::Drop);
    }

    #[test]
    fn refusals_name_the_item() {
        for (part, c, needle) in [
            ("loud", "mp4", "'loud'"),
            ("vorbis", "mp4", "cannot hold vorbis"),
            ("aac", "webm", "'webm' cannot hold aac"),
            ("flac", "mp4", "flac"),
            ("opus_44100", "mkv", "44100"),
            ("mp3_96000", "mkv", "96000"),
            ("mp3_48000", "flv", "48000"),
            ("44000", "mp4", "44000"),
            ("flac_500k", "mkv", "lossless"),
            ("mp3_400k", "mp4", "400k"),
            ("vorbis_96000", "mkv", "96000"),
            ("vorbis_600k", "mkv", "600k"),
            ("vorbis_8000_mono_64k", "mkv", "between 16k and 40k"),
            ("vorbis_44100_stereo_40k", "ogv", "between 48k and 500k"),
            ("opus_mono_300k", "webm", "between 6k and 256k"),
            ("aac_0k", "mp4", "0k"),
            ("none_128k", "mp4", "none"),
            ("aac_aac", "mp4", "twice"),
            ("128k_96k", "mp4", "twice"),
            ("mono_stereo", "mp4", "twice"),
            ("44100_48000", "mp4", "twice"),
        ] {
            let err = audio(part, c).unwrap_err();
            assert_eq!(err.code, copra_sdk::codes::FORMAT_NOT_VALID);
            assert!(err.message.contains(needle), "{part} in {c}: {}", err.message);
        }
        assert!(parse(["none"].into_iter(), container("mp3"), false, "mp3:none").is_err());
    }

    #[test]
    fn plans_with_defaults() {
        let mut input = crate::tests::input(1280, 720, 0);
        let p = spec("", "mp4").plan(&input, None);
        assert_eq!((p.codec.as_str(), p.bitrate_kbps, p.sample_rate, p.channels), ("aac", 128, 44100, 2));
        let p = spec("", "webm").plan(&input, None);
        assert_eq!((p.codec.as_str(), p.bitrate_kbps, p.sample_rate), ("opus", 96, 48000));
        let p = spec("", "mp4").plan(&input, Some(48000));
        assert_eq!(p.sample_rate, 48000);
        input.sample_rate = 96000;
        let p = spec("", "flac").plan(&input, None);
        assert_eq!((p.codec.as_str(), p.bitrate_kbps, p.sample_rate), ("flac", 0, 96000));
        input.sample_rate = 7350;
        assert_eq!(spec("", "wav").plan(&input, None).sample_rate, 48000);
        input.channels = 1;
        assert_eq!(spec("", "mp3").plan(&input, None).channels, 1);
        assert_eq!(spec("stereo", "mp3").plan(&input, None).channels, 2);
        input.channels = 6;
        assert_eq!(spec("", "mp3").plan(&input, None).channels, 2);
    }

    #[test]
    fn bitrates_are_brought_into_the_encoder_envelope() {
        let mut input = crate::tests::input(1280, 720, 0);
        // Allowed at check (a mono input could take it), raised for a stereo one.
        assert!(audio("vorbis_44100_32k", "ogv").is_ok());
        let p = spec("vorbis_44100_32k", "ogv").plan(&input, None);
        assert_eq!((p.bitrate_kbps, p.channels), (48, 2));
        input.channels = 1;
        assert_eq!(spec("vorbis_44100_32k", "ogv").plan(&input, None).bitrate_kbps, 32);
        assert_eq!(spec("vorbis_8000", "ogv").plan(&input, None).bitrate_kbps, 40, "the 128k default lowered");
        assert_eq!(spec("opus_400k", "webm").plan(&input, None).bitrate_kbps, 256);
        assert_eq!(spec("opus_400k_stereo", "webm").plan(&input, None).bitrate_kbps, 400);
        assert_eq!(spec("aac_64k", "mp4").plan(&input, None).bitrate_kbps, 64);
        for codec in [Aac, Opus, Vorbis, Mp3] {
            for &rate in codec.sample_rates() {
                for channels in [1, 2] {
                    let (lo, hi) = codec.bitrates(rate, channels).unwrap();
                    assert!(lo < hi && codec.bitrate_bounds(None, None).is_some_and(|(l, h)| l <= lo && hi <= h));
                }
            }
        }
    }
}

//! The job's `inputs`: several inputs (an intro, the programme, an outro) joined in
//! order into the one timeline every output is made from. `"inputs": [ {…}, {…} ]`
//! stands in place of `"input"`; each item is an input block as `input` takes it, with
//! `clips` of its own. Later inputs are conformed to the first (its picture size, pixel
//! format and frame rate; the first audio's rate and channels), and an input without
//! audio is joined with silence.

use crate::types::MediaInfo;

/// Why the inputs cannot be joined, for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    /// A later input (numbered from 1, as the user counts) without pictures after a
    /// first input with them.
    #[error("Input {0} has no video, but the first input has: every joined input needs pictures.")]
    NoVideo(usize),
}

/// The joined input as plans and conditions see it: the first's pictures and audio
/// (a later input's audio when the first has none), the durations added up, and the
/// audio tracks of the input that has the most (a programme's languages after a
/// one-track intro; each input plays a track in its language, else its main audio).
/// Each `info` is already its own clips joined. An error, for the user, when a later
/// input has no video but the first has.
pub fn joined_info(first: MediaInfo, others: &[MediaInfo]) -> Result<MediaInfo, JoinError> {
    let mut info = first;
    for (i, other) in others.iter().enumerate() {
        if info.has_video && !other.has_video {
            return Err(JoinError::NoVideo(i + 2));
        }
        if !info.has_audio && other.has_audio {
            info.has_audio = true;
            info.audio_codec = other.audio_codec.clone();
            info.sample_rate = other.sample_rate;
            info.channels = other.channels;
        }
        info.duration += other.duration;
        info.size += other.size;
    }
    info.audio_tracks = crate::media::joined_tracks(std::iter::once(info.audio_tracks.as_slice()).chain(others.iter().map(|o| o.audio_tracks.as_slice())));
    // The bitrate over the whole: bytes over seconds.
    if info.duration > 0.0 {
        info.bitrate = (info.size as f64 * 8.0 / info.duration) as u64;
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(duration: f64, video: bool, audio: bool) -> MediaInfo {
        MediaInfo {
            width: if video { 640 } else { 0 },
            height: if video { 360 } else { 0 },
            duration,
            has_video: video,
            has_audio: audio,
            sample_rate: if audio { 44_100 } else { 0 },
            channels: if audio { 2 } else { 0 },
            size: 1000,
            audio_tracks: if audio {
                vec![
                    crate::types::AudioTrack { stream: 1, language: Some("eng".into()), title: None, channels: 2 },
                    crate::types::AudioTrack { stream: 2, language: Some("fre".into()), title: None, channels: 2 },
                ]
            } else {
                Vec::new()
            },
            ..MediaInfo::default()
        }
    }

    #[test]
    fn the_joined_input_adds_up_and_offers_the_programmes_tracks() {
        let joined = joined_info(info(2.0, true, false), &[info(5.0, true, true), info(1.5, true, false)]).unwrap();
        assert_eq!(joined.duration, 8.5);
        assert!(joined.has_audio, "a later input's audio makes the joined input's");
        assert_eq!((joined.sample_rate, joined.channels), (44_100, 2));
        assert_eq!(joined.audio_tracks.len(), 2, "the programme's two languages");
        assert_eq!((joined.width, joined.height), (640, 360));
        let err = joined_info(info(2.0, true, true), &[info(1.0, false, true)]).unwrap_err();
        assert_eq!(err, JoinError::NoVideo(2));
        assert_eq!(err.to_string(), "Input 2 has no video, but the first input has: every joined input needs pictures.");
        let err = joined_info(info(2.0, true, true), &[info(1.0, true, true), info(1.0, false, false)]).unwrap_err();
        assert_eq!(err, JoinError::NoVideo(3));
    }
}

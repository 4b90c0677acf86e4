//! RFC 6381 codec strings (`avc1.64001f`, `hvc1.1.6.L93.B0`, `mp4a.40.2`), which HLS
//! master playlists must carry so players can pick a rendition they can decode. They
//! are read from the encoder's parameter sets (its extradata, in Annex B form).

/// NAL units of an Annex B buffer (start codes removed), emulation prevention kept.
fn nal_units(data: &[u8]) -> Vec<&[u8]> {
    let mut units = Vec::new();
    let mut start = None;
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            if let Some(s) = start {
                // A four-byte start code leaves a zero on the previous unit.
                let mut end = i;
                if end > s && data[end - 1] == 0 {
                    end -= 1;
                }
                units.push(&data[s..end]);
            }
            i += 3;
            start = Some(i);
        } else {
            i += 1;
        }
    }
    if let Some(s) = start.filter(|s| *s < data.len()) {
        units.push(&data[s..]);
    }
    units
}

/// Remove emulation prevention bytes (`00 00 03` → `00 00`).
fn unescape(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &byte in nal {
        if zeros >= 2 && byte == 3 {
            zeros = 0;
            continue;
        }
        zeros = if byte == 0 { zeros + 1 } else { 0 };
        out.push(byte);
    }
    out
}

/// `avc1.PPCCLL` from an H.264 SPS: profile, constraint flags, level.
pub fn avc(extradata: &[u8]) -> Option<String> {
    let sps = nal_units(extradata).into_iter().find(|nal| nal.first().is_some_and(|h| h & 0x1f == 7))?;
    let sps = unescape(sps);
    (sps.len() >= 4).then(|| format!("avc1.{:02x}{:02x}{:02x}", sps[1], sps[2], sps[3]))
}

/// `hvc1.<space><profile>.<compatibility>.<tier><level>.<constraints>` from an HEVC
/// VPS, whose profile_tier_level sits at a fixed offset (ISO/IEC 14496-15 annex E).
pub fn hevc(extradata: &[u8]) -> Option<String> {
    let vps = nal_units(extradata).into_iter().find(|nal| nal.first().is_some_and(|h| (h >> 1) & 0x3f == 32))?;
    let vps = unescape(vps);
    // Two bytes of NAL header, four of VPS fields, then twelve of profile_tier_level.
    let ptl = vps.get(6..18)?;
    let space = match ptl[0] >> 6 {
        1 => "A",
        2 => "B",
        3 => "C",
        _ => "",
    };
    let tier = if ptl[0] & 0x20 != 0 { 'H' } else { 'L' };
    let profile = ptl[0] & 0x1f;
    let compatibility = u32::from_be_bytes([ptl[1], ptl[2], ptl[3], ptl[4]]).reverse_bits();
    let level = ptl[11];
    let mut constraints: Vec<String> = ptl[5..11].iter().map(|b| format!("{b:X}")).collect();
    while constraints.len() > 1 && constraints.last().is_some_and(|c| c == "0") {
        constraints.pop();
    }
    Some(format!("hvc1.{space}{profile}.{compatibility:X}.{tier}{level}.{}", constraints.join(".")))
}

/// The codec string of a stream we encoded (with its codec's parameters' extradata), when
/// HLS needs one we know how to write.
pub fn codec_string(codec: ffmpeg_next::codec::Id, extradata: &[u8]) -> Option<String> {
    use ffmpeg_next::codec::Id;
    match codec {
        Id::H264 => avc(extradata),
        Id::HEVC => hevc(extradata),
        // FFmpeg's AAC encoder, the only one used, writes AAC-LC.
        Id::AAC => Some("mp4a.40.2".into()),
        Id::MP3 => Some("mp4a.40.34".into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn h264_from_sps() {
        // High profile, level 3.1: 00 00 00 01 67 64 00 1f ...
        let extradata = [0, 0, 0, 1, 0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0, 0, 0, 1, 0x68, 0xeb, 0xe3];
        assert_eq!(avc(&extradata).as_deref(), Some("avc1.64001f"));
        assert_eq!(avc(&[0, 0, 1, 0x68, 1, 2, 3]), None);
    }

    #[test]
    fn hevc_from_vps() {
        // A VPS as x265 writes it for Main profile, level 3.1 (93).
        let vps = [
            0x40, 0x01, 0x0c, 0x01, 0xff, 0xff, // header + VPS fields
            0x01, 0x60, 0x00, 0x00, 0x00, // profile space 0, Main, compatibility 0x60000000
            0x90, 0x00, 0x00, 0x00, 0x00, 0x00, // progressive + frame-only
            0x5d, // level 93
            0xac, 0x09,
        ];
        let mut extradata = vec![0, 0, 0, 1];
        extradata.extend_from_slice(&vps);
        assert_eq!(hevc(&extradata).as_deref(), Some("hvc1.1.6.L93.90"));
    }

    #[test]
    fn emulation_prevention_is_removed() {
        assert_eq!(unescape(&[0, 0, 3, 1, 0, 0, 3, 0]), vec![0, 0, 1, 0, 0, 0]);
    }
}

//! Language tags as containers store them and as players announce them: MP4 and
//! Matroska hold a three-letter ISO 639-2 code, while jobs (and WebVTT, HLS, DASH) use
//! BCP 47 tags such as `en` or `pt-BR`. The table is ISO 639-1 to ISO 639-2/T (the
//! terminology codes MP4 names), from Debian's iso-codes; bibliographic codes (`fre`,
//! `ger`) read as their /T twins. Subtitle and audio tracks both go through here.

/// ISO 639-1 code, ISO 639-2/T code.
const TWO_TO_THREE: &[(&str, &str)] = &[
    ("aa", "aar"), ("ab", "abk"), ("ae", "ave"), ("af", "afr"), ("ak", "aka"), ("am", "amh"), ("an", "arg"),
    ("ar", "ara"), ("as", "asm"), ("av", "ava"), ("ay", "aym"), ("az", "aze"), ("ba", "bak"), ("be", "bel"),
    ("bg", "bul"), ("bh", "bih"), ("bi", "bis"), ("bm", "bam"), ("bn", "ben"), ("bo", "bod"), ("br", "bre"),
    ("bs", "bos"), ("ca", "cat"), ("ce", "che"), ("ch", "cha"), ("co", "cos"), ("cr", "cre"), ("cs", "ces"),
    ("cu", "chu"), ("cv", "chv"), ("cy", "cym"), ("da", "dan"), ("de", "deu"), ("dv", "div"), ("dz", "dzo"),
    ("ee", "ewe"), ("el", "ell"), ("en", "eng"), ("eo", "epo"), ("es", "spa"), ("et", "est"), ("eu", "eus"),
    ("fa", "fas"), ("ff", "ful"), ("fi", "fin"), ("fj", "fij"), ("fo", "fao"), ("fr", "fra"), ("fy", "fry"),
    ("ga", "gle"), ("gd", "gla"), ("gl", "glg"), ("gn", "grn"), ("gu", "guj"), ("gv", "glv"), ("ha", "hau"),
    ("he", "heb"), ("hi", "hin"), ("ho", "hmo"), ("hr", "hrv"), ("ht", "hat"), ("hu", "hun"), ("hy", "hye"),
    ("hz", "her"), ("ia", "ina"), ("id", "ind"), ("ie", "ile"), ("ig", "ibo"), ("ii", "iii"), ("ik", "ipk"),
    ("io", "ido"), ("is", "isl"), ("it", "ita"), ("iu", "iku"), ("ja", "jpn"), ("jv", "jav"), ("ka", "kat"),
    ("kg", "kon"), ("ki", "kik"), ("kj", "kua"), ("kk", "kaz"), ("kl", "kal"), ("km", "khm"), ("kn", "kan"),
    ("ko", "kor"), ("kr", "kau"), ("ks", "kas"), ("ku", "kur"), ("kv", "kom"), ("kw", "cor"), ("ky", "kir"),
    ("la", "lat"), ("lb", "ltz"), ("lg", "lug"), ("li", "lim"), ("ln", "lin"), ("lo", "lao"), ("lt", "lit"),
    ("lu", "lub"), ("lv", "lav"), ("mg", "mlg"), ("mh", "mah"), ("mi", "mri"), ("mk", "mkd"), ("ml", "mal"),
    ("mn", "mon"), ("mr", "mar"), ("ms", "msa"), ("mt", "mlt"), ("my", "mya"), ("na", "nau"), ("nb", "nob"),
    ("nd", "nde"), ("ne", "nep"), ("ng", "ndo"), ("nl", "nld"), ("nn", "nno"), ("no", "nor"), ("nr", "nbl"),
    ("nv", "nav"), ("ny", "nya"), ("oc", "oci"), ("oj", "oji"), ("om", "orm"), ("or", "ori"), ("os", "oss"),
    ("pa", "pan"), ("pi", "pli"), ("pl", "pol"), ("ps", "pus"), ("pt", "por"), ("qu", "que"), ("rm", "roh"),
    ("rn", "run"), ("ro", "ron"), ("ru", "rus"), ("rw", "kin"), ("sa", "san"), ("sc", "srd"), ("sd", "snd"),
    ("se", "sme"), ("sg", "sag"), ("si", "sin"), ("sk", "slk"), ("sl", "slv"), ("sm", "smo"), ("sn", "sna"),
    ("so", "som"), ("sq", "sqi"), ("sr", "srp"), ("ss", "ssw"), ("st", "sot"), ("su", "sun"), ("sv", "swe"),
    ("sw", "swa"), ("ta", "tam"), ("te", "tel"), ("tg", "tgk"), ("th", "tha"), ("ti", "tir"), ("tk", "tuk"),
    ("tl", "tgl"), ("tn", "tsn"), ("to", "ton"), ("tr", "tur"), ("ts", "tso"), ("tt", "tat"), ("tw", "twi"),
    ("ty", "tah"), ("ug", "uig"), ("uk", "ukr"), ("ur", "urd"), ("uz", "uzb"), ("ve", "ven"), ("vi", "vie"),
    ("vo", "vol"), ("wa", "wln"), ("wo", "wol"), ("xh", "xho"), ("yi", "yid"), ("yo", "yor"), ("za", "zha"),
    ("zh", "zho"), ("zu", "zul"),
];

/// ISO 639-2/B code, ISO 639-2/T code, where they differ.
const BIBLIOGRAPHIC: &[(&str, &str)] = &[
    ("alb", "sqi"), ("arm", "hye"), ("baq", "eus"), ("bur", "mya"), ("chi", "zho"), ("cze", "ces"),
    ("dut", "nld"), ("fre", "fra"), ("geo", "kat"), ("ger", "deu"), ("gre", "ell"), ("ice", "isl"),
    ("mac", "mkd"), ("mao", "mri"), ("may", "msa"), ("per", "fas"), ("rum", "ron"), ("slo", "slk"),
    ("tib", "bod"), ("wel", "cym"),
];

/// The three-letter code a container stores for `tag` (a BCP 47 tag: its primary
/// language subtag counts): `en` and `en-GB` are `eng`, `fre` is `fra`, another three-letter
/// code is kept, and anything else is `und` (undetermined).
pub fn iso639_2(tag: &str) -> String {
    let primary = tag.split(['-', '_']).next().unwrap_or_default().to_ascii_lowercase();
    if let Some((_, three)) = TWO_TO_THREE.iter().chain(BIBLIOGRAPHIC).find(|(code, _)| *code == primary) {
        return (*three).to_string();
    }
    if primary.len() == 3 && primary.bytes().all(|b| b.is_ascii_lowercase()) { primary } else { "und".to_string() }
}

/// The BCP 47 form of a file's tag: `eng` → `en`, `fre` → `fr`, `pt-BR` as it is, a
/// code without a two-letter form (`haw`) as it is; `und` (undetermined) is none.
pub fn bcp47(tag: &str) -> Option<String> {
    let tag = tag.trim();
    if tag.is_empty() || tag.eq_ignore_ascii_case("und") {
        return None;
    }
    let (primary, rest) = tag.split_once('-').map_or((tag, None), |(p, r)| (p, Some(r)));
    let three = iso639_2(primary);
    let short = TWO_TO_THREE.iter().find(|(_, t)| *t == three).map_or_else(|| primary.to_ascii_lowercase(), |(two, _)| (*two).to_string());
    Some(match rest {
        Some(rest) => format!("{short}-{rest}"),
        None => short,
    })
}

/// Whether `tag` has the shape of a BCP 47 language tag: a primary subtag of 2 to 8
/// letters (or `x-`/`i-` then subtags: private use), then subtags of 1 to 8 letters or
/// digits, at most 35 characters in all. The shape is what makes a tag safe in file
/// names, playlist attributes and manifests; whether a player knows it is its own matter.
pub fn is_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let primary = parts.next().unwrap_or("");
    let private = primary.eq_ignore_ascii_case("x") || primary.eq_ignore_ascii_case("i");
    let subtags: Vec<&str> = parts.collect();
    tag.len() <= 35
        && ((2..=8).contains(&primary.len()) && primary.chars().all(|c| c.is_ascii_alphabetic()) || private && !subtags.is_empty())
        && subtags.iter().all(|s| (1..=8).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// Whether `tag` is a language tag ([`is_tag`]) whose primary subtag is an ISO 639
/// code (2 or 3 letters): what a playlist announces as a rendition's `LANGUAGE`.
pub fn is_iso_tag(tag: &str) -> bool {
    is_tag(tag) && tag.split('-').next().is_some_and(|primary| (2..=3).contains(&primary.len()))
}

/// A track's title, from a stranger's file, as a name players are told: plain text
/// without control characters, quotes, backslashes, commas or angle brackets (it goes
/// into playlist attributes, manifests and cue files), at most `max` characters; none
/// when nothing is left.
pub fn track_name(title: &str, max: usize) -> Option<String> {
    let name: String = title.chars().filter(|c| !c.is_control() && !matches!(c, '"' | '\\' | ',' | '<' | '>')).take(max).collect();
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_string())
}

/// Whether two tags name the same language (`fr`, `fra`, `fre` and `fr-CA` do).
pub fn same_language(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b) || (iso639_2(a) != "und" && iso639_2(a) == iso639_2(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_become_three_letters() {
        assert_eq!(iso639_2("en"), "eng");
        assert_eq!(iso639_2("pt-BR"), "por");
        assert_eq!(iso639_2("fre"), "fra");
        assert_eq!(iso639_2("fra"), "fra");
        assert_eq!(iso639_2("ZH_hant"), "zho");
        assert_eq!(iso639_2("xx"), "und");
        assert_eq!(iso639_2("haw"), "haw");
        assert!(same_language("fr", "fra") && same_language("fre", "fr-CA") && !same_language("fr", "en"));
        assert!(same_language("x-klingon", "X-Klingon") && !same_language("xx", "yy"));
        assert_eq!(bcp47("eng").as_deref(), Some("en"));
        assert_eq!(bcp47("fre").as_deref(), Some("fr"));
        assert_eq!(bcp47("deu").as_deref(), Some("de"));
        assert_eq!(bcp47("pt-BR").as_deref(), Some("pt-BR"));
        assert_eq!(bcp47("tlh").as_deref(), Some("tlh"));
        assert_eq!(bcp47("und"), None);
    }

    #[test]
    fn tags_and_names_from_strangers() {
        for good in ["en", "fra", "pt-BR", "es-419", "zh-Hant-TW", "x-klingon", "english"] {
            assert!(is_tag(good), "{good}");
        }
        for bad in ["", "e", "x", "en-", "en--US", "en\"/../x", "12", "en_US", &"a".repeat(36), "en-toolongsubtag"] {
            assert!(!is_tag(bad), "{bad}");
        }
        assert!(is_iso_tag("pt-BR") && is_iso_tag("fra") && !is_iso_tag("english") && !is_iso_tag("x-klingon"));
        assert_eq!(track_name("Fran\u{e7}ais \"SDH\", <b>\n", 100).as_deref(), Some("Français SDH b"));
        assert_eq!(track_name("\"\"", 100), None);
        assert_eq!(track_name(&"n".repeat(500), 64).map(|n| n.len()), Some(64));
    }
}

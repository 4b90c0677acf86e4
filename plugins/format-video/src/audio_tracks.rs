//! `"audio"` on an `httpstream` output: which of the input's audio tracks the package
//! carries, each as an alternate rendition (`"all"`, or languages such as
//! `["en", "fr"]`). Without it, the main track alone, as before. The host matches the
//! languages to the input's tracks when it runs the job.

use copra_sdk::format::AudioSelection;
use copra_sdk::{Error, Json};

use crate::params::Params;

pub const KEY: &str = "audio";

/// More languages than any input carries in practice; the host refuses more too.
pub const MAX_LANGUAGES: usize = 16;

/// The tracks asked for, as the plan will say them.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Tracks {
    #[default]
    Main,
    All,
    Languages(Vec<String>),
}

impl Tracks {
    pub fn plan(&self) -> AudioSelection {
        match self {
            Tracks::Main => AudioSelection::Main,
            Tracks::All => AudioSelection::All,
            Tracks::Languages(l) => AudioSelection::Languages(l.clone()),
        }
    }
}

pub fn parse(p: &Params<'_>) -> Result<Tracks, Error> {
    let Some(value) = p.get(KEY) else { return Ok(Tracks::Main) };
    let bad = || {
        Error::param(format!(
            "The parameter '{}' must be \"all\", \"main\", or a list of up to {MAX_LANGUAGES} languages such as [\"en\", \"fr\"], not {value}.",
            p.name(KEY)
        ))
    };
    let languages: Vec<&str> = match value {
        Json::String(s) if s == "all" => return Ok(Tracks::All),
        Json::String(s) if s == "main" => return Ok(Tracks::Main),
        Json::String(s) => vec![s.as_str()],
        Json::Array(items) => items.iter().map(|i| i.as_str().ok_or_else(bad)).collect::<Result<_, _>>()?,
        _ => return Err(bad()),
    };
    if languages.is_empty() || languages.len() > MAX_LANGUAGES {
        return Err(bad());
    }
    let mut kept: Vec<String> = Vec::new();
    for language in languages {
        if !is_language(language) {
            return Err(Error::param(format!(
                "The parameter '{}' names '{language}', which is not a language tag (such as \"en\", \"fra\" or \"pt-BR\").",
                p.name(KEY)
            )));
        }
        if kept.iter().any(|k| k.eq_ignore_ascii_case(language)) {
            return Err(Error::param(format!("The parameter '{}' names '{language}' twice.", p.name(KEY))));
        }
        kept.push(language.to_string());
    }
    Ok(Tracks::Languages(kept))
}

/// A BCP 47 tag as files and players use them: a 2 or 3 letter language, then subtags
/// of 1 to 8 letters or digits.
pub fn is_language(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let first = parts.next().unwrap_or("");
    (2..=3).contains(&first.len())
        && first.chars().all(|c| c.is_ascii_alphabetic())
        && parts.all(|s| (1..=8).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric()))
        && tag.len() <= 35
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn selection(value: Json) -> Result<Tracks, Error> {
        let params = json!({ "audio": value });
        parse(&Params::new(&params, &[KEY], "httpstream")?)
    }

    #[test]
    fn all_main_and_languages() {
        assert_eq!(selection(json!("all")).unwrap(), Tracks::All);
        assert_eq!(selection(json!("main")).unwrap(), Tracks::Main);
        assert_eq!(selection(json!(null)).unwrap(), Tracks::Main);
        assert_eq!(selection(json!(["en", "fra", "pt-BR"])).unwrap(), Tracks::Languages(vec!["en".into(), "fra".into(), "pt-BR".into()]));
        assert_eq!(selection(json!("de")).unwrap(), Tracks::Languages(vec!["de".into()]));
    }

    #[test]
    fn refusals_name_the_key() {
        for bad in [json!([]), json!(3), json!(["en", 2]), json!(["english!"]), json!(["e"]), json!(["en", "EN"]), json!(vec!["en"; 17])] {
            let err = selection(bad.clone()).unwrap_err();
            assert!(format!("{err:?}").contains("audio"), "{bad}: {err:?}");
        }
    }
}

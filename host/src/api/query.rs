//! Query strings read by hand, so a malformed one gets the API's error shape (axum's
//! `Query` answers its own plain-text 400).

use copra_codes::ErrorCode;
use std::collections::HashMap;

use crate::job::JobError;

/// The query's parameters, the last value of each name winning.
pub fn params(raw: Option<&str>) -> HashMap<String, String> {
    url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()).map(|(n, v)| (n.into_owned(), v.into_owned())).collect()
}

/// Refuses names not in `known`, so a typo in a new route's query is not silently ignored.
pub fn only(params: &HashMap<String, String>, known: &[&str]) -> Result<(), JobError> {
    match params.keys().find(|name| !known.contains(&name.as_str())) {
        Some(name) => Err(JobError::invalid(ErrorCode::RequestNotValid, format!("Unknown query parameter '{name}'."))),
        None => Ok(()),
    }
}

/// A `true`/`false` parameter (absent: false).
pub fn flag(params: &HashMap<String, String>, name: &str) -> Result<bool, JobError> {
    match params.get(name).map(String::as_str) {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") | Some("") => Ok(true),
        Some(other) => Err(JobError::invalid(ErrorCode::RequestNotValid, format!("The query parameter '{name}' must be true or false, not '{other}'."))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_and_bad_flags_are_refused() {
        let p = params(Some("dry_run=true&limit=5"));
        assert!(flag(&p, "dry_run").unwrap() && only(&p, &["dry_run", "limit"]).is_ok());
        assert_eq!(p["limit"], "5");
        assert!(only(&params(Some("dryrun=true")), &["dry_run"]).is_err());
        assert!(flag(&params(Some("dry_run=yes")), "dry_run").is_err());
        assert!(!flag(&params(None), "dry_run").unwrap());
    }
}

//! `copra jobs list` as a table: one line a job, newest first.

use serde_json::Value;

/// The table of a `GET /v2/jobs` answer, header first; "no jobs" when there are none.
pub fn jobs(list: &Value) -> String {
    let jobs = list.get("jobs").and_then(Value::as_array).cloned().unwrap_or_default();
    if jobs.is_empty() {
        return "no jobs\n".to_string();
    }
    let text = |job: &Value, field: &str| job.get(field).and_then(Value::as_str).unwrap_or("").to_string();
    let mut out = format!("{:<26} {:<14} {:>8} {:<26} {}\n", "ID", "STATUS", "PROGRESS", "CREATED", "OUTPUTS");
    for job in &jobs {
        let outputs = job.get("outputs").and_then(Value::as_array).cloned().unwrap_or_default();
        let done = outputs.iter().filter(|o| o.get("url").is_some() || o.get("urls").is_some()).count();
        out.push_str(&format!(
            "{:<26} {:<14} {:>8} {:<26} {}/{}\n",
            text(job, "id"),
            text(job, "status"),
            text(job, "progress"),
            text(job, "created_at"),
            done,
            outputs.len()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn a_line_per_job_under_a_header() {
        let list = json!({"jobs": [
            {"id": "J2", "status": "job.starting", "progress": "40%", "created_at": "2026-11-26 06:00:00 +0000", "outputs": [{"key": "mp4"}]},
            {"id": "J1", "status": "job.completed", "progress": "100%", "created_at": "2026-11-26 05:00:00 +0000", "outputs": [{"key": "mp4", "url": "http://x/a.mp4"}]},
        ]});
        let table = super::jobs(&list);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("ID") && lines[1].starts_with("J2") && lines[2].contains("job.completed"));
        assert!(lines[1].contains("0/1") && lines[2].contains("1/1") && lines[2].contains("100%"));
        assert_eq!(super::jobs(&json!({"jobs": []})), "no jobs\n");
    }
}

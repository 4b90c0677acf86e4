//! A new job's id: 14 letters and digits, as Coconut's (`vdq1fShawHzyz3`).
//!
//! The first 7 are the milliseconds since 2026 began, in base 62 (they last 111 years;
//! then they wrap and only stop sorting), the other 7 are random (62^7, about 3.5 * 10^12
//! for the jobs of one millisecond: at 5,000 submits a second without pause, two jobs of
//! one millisecond draw the same rest about once in ten years, and the second insert is
//! refused). So ids sort by creation, and a new job's id lands at the end of the jobs'
//! primary-key index (and of the outputs' index by job) instead of on a random page of
//! it. With random ids every submit dirtied two random index pages, and as the database
//! grew each checkpoint rewrote most of both indexes.
//!
//! An id is a name, not a secret: every read of a job checks its owner.

/// 2026-01-01T00:00:00Z in milliseconds since 1970.
const EPOCH_MS: i64 = 1_767_225_600_000;

/// In ASCII order, so ids sort as their times do.
const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A new job id for a job created at `now_ms`.
pub fn new_job_id(now_ms: i64) -> String {
    let mut time = now_ms.saturating_sub(EPOCH_MS).max(0) as u64;
    let mut prefix = [0u8; 7];
    for place in prefix.iter_mut().rev() {
        *place = DIGITS[(time % 62) as usize];
        time /= 62;
    }
    prefix.iter().map(|&digit| char::from(digit)).chain(crate::random_id(7).chars()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_fourteen_letters_and_digits_and_sort_by_time() {
        let now = 1_796_000_000_000; // December 2026
        let a = new_job_id(now);
        assert_eq!(a.len(), 14);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()), "{a}");
        let later = new_job_id(now + 1);
        let much_later = new_job_id(now + 86_400_000);
        assert!(a < later && later < much_later, "{a} {later} {much_later}");
        // The same millisecond: the same prefix, a random rest.
        let twins: std::collections::HashSet<String> = (0..1000).map(|_| new_job_id(now)).collect();
        assert_eq!(twins.len(), 1000);
        assert!(twins.iter().all(|id| id[..7] == a[..7]));
        // The last millisecond 7 places hold still sorts.
        let last = EPOCH_MS + 62i64.pow(7) - 1;
        assert!(new_job_id(last - 1) < new_job_id(last));
        assert!(new_job_id(last).starts_with("zzzzzzz") && new_job_id(EPOCH_MS).starts_with("0000000"));
    }
}

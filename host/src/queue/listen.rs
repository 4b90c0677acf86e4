//! Wake-ups across processes on PostgreSQL: [`super::enqueue`] sends
//! `NOTIFY copra_jobs` with the new job's id, and every worker process listens on its own
//! connection and wakes its claim loop. The connection is remade when it drops; after
//! each (re)connection the loop is woken once, for work announced while nobody listened.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::sqlx::postgres::PgListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The notification channel of new jobs.
pub const CHANNEL: &str = "copra_jobs";

/// How long to wait before connecting again after a failure.
const RECONNECT: Duration = Duration::from_secs(1);

/// Listen on `url` (a PostgreSQL URL) and wake `wake` on each new job until `stop`.
pub async fn listen(url: String, wake: Arc<Notify>, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = listen_once(&url, &wake) => {}
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(RECONNECT) => {}
        }
    }
}

/// One connection's life: returns when it fails beyond what `PgListener` reconnects by itself.
async fn listen_once(url: &str, wake: &Notify) {
    let mut listener = match PgListener::connect(url).await {
        Ok(listener) => listener,
        Err(err) => {
            tracing::warn!(%err, "cannot connect to listen for new jobs; polling meanwhile");
            return;
        }
    };
    if let Err(err) = listener.listen(CHANNEL).await {
        tracing::warn!(%err, "LISTEN for new jobs failed; polling meanwhile");
        return;
    }
    tracing::debug!(channel = CHANNEL, "listening for new jobs");
    wake.notify_one();
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => {
                tracing::trace!(job_id = notification.payload(), "woken for a new job");
                wake.notify_one();
            }
            // The connection dropped; the next call reconnects and listens again. Jobs
            // announced in between are found by this look.
            Ok(None) => {
                tracing::warn!("the connection listening for new jobs dropped; reconnecting");
                wake.notify_one();
            }
            Err(err) => {
                tracing::warn!(%err, "listening for new jobs failed; reconnecting");
                return;
            }
        }
    }
}

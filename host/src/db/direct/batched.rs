//! Statements shared by the requests that arrive while PostgreSQL is busy.
//!
//! One statement per request made every submit and every read a round trip to a server
//! process of its own: under load the API node, the database's processes and the load
//! itself took turns on the cores, and a third of the API node's time went to the
//! kernel's context switches. Here a request joins a queue. While fewer statements than
//! the machine has cores are running, it starts one at once, so a lone request waits for
//! nothing. Otherwise it waits, and the statement that finishes next takes everything that
//! queued meanwhile (up to a batch's size) into one statement.
//!
//! Statements run in a task of their own: a request whose caller is dropped (a client
//! that went away) never strands the requests queued behind it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use sea_orm::sqlx::postgres::PgPool;

/// The requests waiting and the statements running, for one pool and one kind of
/// request. `T` carries the request and where its answer goes.
pub(super) struct Batcher<T> {
    waiting: Mutex<Waiting<T>>,
    /// How many statements may run at once: the machine's cores (at least 2).
    most_running: usize,
    /// The most requests one statement takes.
    most_in_one: usize,
    /// Statements run so far.
    statements: AtomicU64,
}

struct Waiting<T> {
    requests: Vec<T>,
    running: usize,
}

/// The batchers of one kind of request, by pool.
pub(super) type Registry<T> = OnceLock<Mutex<HashMap<usize, Arc<Batcher<T>>>>>;

/// The batcher of `pool` in `registry`. A process has one pool per database (the tests
/// have several), so batchers are kept by the pool's identity: its options, shared by
/// its clones, live as long as the pool. A batch only ever holds requests of one pool.
pub(super) fn of_pool<T>(registry: &'static Registry<T>, pool: &PgPool, most_in_one: usize) -> Arc<Batcher<T>> {
    let key = Arc::as_ptr(&pool.connect_options()) as usize;
    let mut batchers = lock(registry.get_or_init(Default::default));
    batchers
        .entry(key)
        .or_insert_with(|| {
            let cores = std::thread::available_parallelism().map_or(2, usize::from);
            Arc::new(Batcher {
                waiting: Mutex::new(Waiting { requests: Vec::new(), running: 0 }),
                most_running: cores.max(2),
                most_in_one,
                statements: AtomicU64::new(0),
            })
        })
        .clone()
}

impl<T: Send + 'static> Batcher<T> {
    /// Queue `request`; if a statement may start, start one with `run`, which answers
    /// every request of its batch.
    pub(super) fn push<F, Fut>(self: &Arc<Self>, request: T, run: F)
    where
        F: Fn(Vec<T>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let lead = {
            let mut waiting = lock(&self.waiting);
            waiting.requests.push(request);
            (waiting.running < self.most_running).then(|| {
                waiting.running += 1;
                self.take(&mut waiting)
            })
        };
        if let Some(batch) = lead {
            tokio::spawn(self.clone().run_until_none_wait(batch, run));
        }
    }

    /// Run `batch`, then whatever queued meanwhile, until nothing waits.
    async fn run_until_none_wait<F, Fut>(self: Arc<Self>, mut batch: Vec<T>, run: F)
    where
        F: Fn(Vec<T>) -> Fut,
        Fut: Future<Output = ()>,
    {
        // Counts this runner out even if a statement panics, so later requests start
        // their own.
        struct Running<T> {
            batcher: Arc<Batcher<T>>,
            counted_out: bool,
        }
        impl<T> Drop for Running<T> {
            fn drop(&mut self) {
                if !self.counted_out {
                    lock(&self.batcher.waiting).running -= 1;
                }
            }
        }
        let mut running = Running { batcher: self, counted_out: false };
        loop {
            running.batcher.statements.fetch_add(1, Ordering::Relaxed);
            run(batch).await;
            let mut waiting = lock(&running.batcher.waiting);
            if waiting.requests.is_empty() {
                // Counted out under the same lock a new request looks at: none is left
                // behind.
                waiting.running -= 1;
                running.counted_out = true;
                return;
            }
            batch = running.batcher.take(&mut waiting);
        }
    }

    /// The next statement's requests: the oldest, up to `most_in_one`.
    fn take(&self, waiting: &mut Waiting<T>) -> Vec<T> {
        let count = waiting.requests.len().min(self.most_in_one);
        waiting.requests.drain(..count).collect()
    }
}

impl<T> Batcher<T> {
    /// Statements run so far.
    #[cfg(test)]
    pub(super) fn statements(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    /// Statements running now.
    #[cfg(test)]
    pub(super) fn running(&self) -> usize {
        lock(&self.waiting).running
    }
}

/// A lock whose holder never leaves its data half-changed (every change under it is one
/// assignment), so a panic elsewhere does not make it unusable.
fn lock<V>(mutex: &Mutex<V>) -> MutexGuard<'_, V> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

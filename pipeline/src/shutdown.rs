//! How `riskstream run` and `riskstream enforce` stop their Kafka thread:
//! the thread polls a stop flag, and the service sets it when its shutdown
//! future completes, then waits for the thread to drain. Both use this one
//! wait so that a shutdown request is handled, and logged, the same way.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::task::{JoinError, JoinHandle};

/// Waits for `worker` to end; when `shutdown` completes first, sets `stop`
/// and waits for the worker to see it and return.
pub(crate) async fn join_on_shutdown<T>(
    worker: JoinHandle<T>,
    stop: &AtomicBool,
    shutdown: impl Future<Output = ()>,
) -> Result<T, JoinError> {
    tokio::pin!(worker);
    tokio::select! {
        r = &mut worker => r,
        () = shutdown => {
            tracing::info!("shutdown requested");
            stop.store(true, Ordering::Relaxed);
            worker.await
        }
    }
}

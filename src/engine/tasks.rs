//! Supervised background tasks: a panic or a fatal error of any engine task
//! is kept and surfaces on the next API call, and `close` joins them all.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::cluster::ClusterError;

/// The tasks of one engine, and the first fatal failure among them.
#[derive(Default)]
pub(crate) struct Tasks {
    handles: Mutex<Vec<JoinHandle<()>>>,
    /// Set once: the first failure wins. A lock-free read, as every send checks it.
    fatal: Arc<OnceLock<ClusterError>>,
    /// Notified when a task fails, so waiters (flush, poll) wake and report it.
    pub(crate) failed: Arc<Notify>,
}

impl Tasks {
    /// Spawns `fut` as task `name`. An `Err` it returns, or a panic, becomes
    /// the engine's fatal error.
    pub(crate) fn spawn<F>(&self, name: &'static str, fut: F)
    where
        F: Future<Output = Result<(), ClusterError>> + Send + 'static,
    {
        let fatal = self.fatal.clone();
        let failed = self.failed.clone();
        let handle = tokio::spawn(async move {
            let outcome = AssertUnwindSafe(fut).catch_unwind().await;
            let err = match outcome {
                Ok(Ok(())) => return,
                Ok(Err(e)) => e,
                Err(panic) => ClusterError::Background {
                    task: name,
                    message: panic_message(&panic),
                },
            };
            tracing::error!(task = name, error = %err, "background task failed");
            let _ = fatal.set(err);
            failed.notify_waiters();
        });
        let mut handles = self.handles.lock().unwrap_or_else(|p| p.into_inner());
        handles.retain(|h| !h.is_finished());
        handles.push(handle);
    }

    /// The first fatal failure, if any task had one.
    pub(crate) fn fatal(&self) -> Option<ClusterError> {
        self.fatal.get().cloned()
    }

    /// Records a fatal failure found outside a task's own result.
    pub(crate) fn set_fatal(&self, err: ClusterError) {
        let _ = self.fatal.set(err);
        self.failed.notify_waiters();
    }

    /// Waits up to `timeout` for every task to end (the caller has told them
    /// to stop), then aborts the rest.
    pub(crate) async fn join(&self, timeout: Duration) {
        let handles: Vec<_> =
            std::mem::take(&mut *self.handles.lock().unwrap_or_else(|p| p.into_inner()));
        let aborts: Vec<_> = handles.iter().map(|h| h.abort_handle()).collect();
        let all = futures_util::future::join_all(handles);
        if tokio::time::timeout(timeout, all).await.is_err() {
            tracing::debug!("background tasks did not stop in time; aborting them");
            for a in aborts {
                a.abort();
            }
        }
    }
}

impl Drop for Tasks {
    fn drop(&mut self) {
        for h in self
            .handles
            .get_mut()
            .map(|v| v.drain(..))
            .into_iter()
            .flatten()
        {
            h.abort();
        }
    }
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        format!("panicked: {s}")
    } else if let Some(s) = p.downcast_ref::<String>() {
        format!("panicked: {s}")
    } else {
        "panicked".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_becomes_the_fatal_error_and_wakes_waiters() {
        let tasks = Tasks::default();
        let woken = tasks.failed.notified();
        tasks.spawn("test", async { panic!("boom") });
        tokio::time::timeout(Duration::from_secs(5), woken)
            .await
            .expect("woken by the failure");
        let e = tasks.fatal().expect("fatal error kept");
        assert!(
            e.to_string().contains("test task failed: panicked: boom"),
            "{e}"
        );
        tasks.spawn("second", async { Err(ClusterError::Closed) });
        tasks.join(Duration::from_secs(5)).await;
        assert!(
            tasks.fatal().unwrap().to_string().contains("boom"),
            "the first failure is kept"
        );
    }
}

//! The one way kiln waits for something: poll an operation until it succeeds or a deadline
//! passes, never sleep-and-hope.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// Why [`until_ok`] gave up.
#[derive(Debug, thiserror::Error)]
pub enum Error<E: std::error::Error + 'static> {
    /// The deadline passed; the last attempt's error is the source (if any attempt ran).
    #[error("Timed out after {waited:?} ({attempts} attempts)")]
    Timeout {
        waited: Duration,
        attempts: u32,
        #[source]
        last: Option<E>,
    },
    /// The operation said to stop trying.
    #[error("Gave up waiting")]
    Fatal(#[source] E),
}

/// What one attempt of [`until_ok`] returned.
pub enum Attempt<T, E> {
    Done(T),
    /// Not yet; try again after the interval.
    Retry(E),
    /// Stop now with this error (e.g. the process we wait for died).
    Fatal(E),
}

/// Runs `op` every `interval` until it returns `Done`, returns `Fatal`, or `timeout` passes.
/// An attempt still running at the deadline is abandoned at the deadline.
pub async fn until_ok<T, E, F, Fut>(
    timeout: Duration,
    interval: Duration,
    mut op: F,
) -> Result<T, Error<E>>
where
    E: std::error::Error + 'static,
    F: FnMut() -> Fut,
    Fut: Future<Output = Attempt<T, E>>,
{
    let start = Instant::now();
    let deadline = start + timeout;
    let mut attempts = 0;
    let mut last = None;
    loop {
        attempts += 1;
        let next = Instant::now() + interval;
        match tokio::time::timeout_at(deadline, op()).await {
            Ok(Attempt::Done(v)) => return Ok(v),
            Ok(Attempt::Fatal(e)) => return Err(Error::Fatal(e)),
            Ok(Attempt::Retry(e)) => last = Some(e),
            Err(_elapsed) => {}
        }
        if Instant::now() >= deadline || next >= deadline {
            return Err(Error::Timeout {
                waited: start.elapsed(),
                attempts,
                last,
            });
        }
        tokio::time::sleep_until(next).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("not yet")]
    struct NotYet;

    #[tokio::test(start_paused = true)]
    async fn succeeds_after_retries() {
        let mut n = 0;
        let v = until_ok(Duration::from_secs(10), Duration::from_secs(1), || {
            n += 1;
            let n = n;
            async move {
                if n < 3 {
                    Attempt::Retry(NotYet)
                } else {
                    Attempt::Done(n)
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(v, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn times_out_with_last_error() {
        let err = until_ok(Duration::from_secs(3), Duration::from_secs(1), || async {
            Attempt::<(), _>::Retry(NotYet)
        })
        .await
        .unwrap_err();
        match err {
            Error::Timeout { attempts, last, .. } => {
                assert_eq!(attempts, 3);
                assert!(last.is_some());
            }
            Error::Fatal(_) => panic!("expected timeout"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn fatal_stops_at_once() {
        let err = until_ok(Duration::from_secs(3), Duration::from_secs(1), || async {
            Attempt::<(), _>::Fatal(NotYet)
        })
        .await
        .unwrap_err();
        assert!(matches!(err, Error::Fatal(_)));
    }
}

//! Waiting for a fact instead of sleeping for a guessed time.
//!
//! A positive assertion polls its condition until it holds or the deadline
//! passes. A negative one ("nothing fired twice", "not blocked yet") first
//! waits for a fact that proves the system has caught up (the simulated
//! clock's `due_now` is zero, a resolver holds the primary's serial) and
//! only then asserts: a sleep would pass trivially on a slow machine.

use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, Instant};

/// How often a condition is polled.
pub const POLL: Duration = Duration::from_millis(50);

/// What a polled condition returns: done (with a value), or not yet (with
/// what was seen, for the failure message).
pub trait Outcome {
    type Output;
    fn outcome(self) -> Result<Self::Output, String>;
}

impl Outcome for bool {
    type Output = ();
    fn outcome(self) -> Result<(), String> {
        if self {
            Ok(())
        } else {
            Err("the condition was still false".into())
        }
    }
}

impl<T> Outcome for Option<T> {
    type Output = T;
    fn outcome(self) -> Result<T, String> {
        self.ok_or_else(|| "nothing yet".into())
    }
}

impl<T, E: Display> Outcome for Result<T, E> {
    type Output = T;
    fn outcome(self) -> Result<T, String> {
        self.map_err(|e| e.to_string())
    }
}

fn give_up(what: &str, within: Duration, last: &str) -> ! {
    panic!("waited {within:?} for {what}; last seen: {last}")
}

/// Polls `check` every [`POLL`] until it is done, and returns its value;
/// panics after `within`, saying `what` was awaited and what `check` last
/// said. `check` returns a `bool`, an `Option` or a `Result` whose error
/// says what it saw.
pub fn wait_until<O: Outcome>(
    within: Duration,
    what: &str,
    mut check: impl FnMut() -> O,
) -> O::Output {
    let start = Instant::now();
    loop {
        match check().outcome() {
            Ok(v) => return v,
            Err(last) if start.elapsed() >= within => give_up(what, within, &last),
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

/// [`wait_until`] for a condition that is itself async (an HTTP call);
/// sleeps on the runtime between polls.
pub async fn wait_until_async<O, F>(
    within: Duration,
    what: &str,
    mut check: impl FnMut() -> F,
) -> O::Output
where
    O: Outcome,
    F: Future<Output = O>,
{
    let start = Instant::now();
    loop {
        match check().await.outcome() {
            Ok(v) => return v,
            Err(last) if start.elapsed() >= within => give_up(what, within, &last),
            Err(_) => tokio::time::sleep(POLL).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_the_value_once_the_condition_holds() {
        let mut n = 0;
        let got = wait_until(Duration::from_secs(5), "n reaches 3", || {
            n += 1;
            (n >= 3).then_some(n)
        });
        assert_eq!(got, 3);
    }

    #[test]
    #[should_panic(expected = "waited 100ms for the impossible; last seen: still 1")]
    fn fails_saying_what_it_waited_for_and_what_it_saw() {
        wait_until(Duration::from_millis(100), "the impossible", || {
            Err::<(), _>("still 1")
        });
    }

    #[tokio::test]
    async fn the_async_form_polls_a_future() {
        let mut n = 0;
        let got = wait_until_async(Duration::from_secs(5), "n reaches 2", || {
            n += 1;
            let v = n;
            async move {
                if v >= 2 {
                    Ok(v)
                } else {
                    Err(format!("n = {v}"))
                }
            }
        })
        .await;
        assert_eq!(got, 2);
    }
}

//! Wall-clock helpers at the edge; the planner itself takes `now` as an argument.

pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Milliseconds between two RFC 3339 instants (`None` if either does not parse).
pub fn millis_between(from: &str, to: &str) -> Option<i64> {
    let a = chrono::DateTime::parse_from_rfc3339(from).ok()?;
    let b = chrono::DateTime::parse_from_rfc3339(to).ok()?;
    Some((b - a).num_milliseconds())
}

/// Milliseconds since the Unix epoch, by the system clock.
pub fn system_now_ms() -> i64 {
    let real = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    #[cfg(any(test, feature = "fakes"))]
    let real = real + SKEW_MS.with(std::cell::Cell::get);
    real
}

#[cfg(any(test, feature = "fakes"))]
thread_local! {
    /// How far the simulations moved this thread's clock on (they run on one thread).
    static SKEW_MS: std::cell::Cell<i64> = const { std::cell::Cell::new(0) };
}

/// Moves this thread's clock on by `ms` (`None`: back to the system's): simulated time passing.
#[cfg(any(test, feature = "fakes"))]
pub fn skew_for_tests(ms: Option<i64>) {
    SKEW_MS.with(|s| s.set(ms.map_or(0, |ms| s.get() + ms)));
}

/// Sets this thread's clock (`system_now_ms`) to `at_ms`: simulated time that does not run on
/// with the real clock, so a seeded run decides the same at any speed.
#[cfg(any(test, feature = "fakes"))]
pub fn pin_clock(at_ms: i64) {
    skew_for_tests(None);
    skew_for_tests(Some(at_ms - system_now_ms()));
}

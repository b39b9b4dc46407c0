//! ECS's request throttling as documented, and how a model's calls fare against it.
//!
//! ECS throttles every account per Region with token buckets, one per category of actions, shared
//! by every caller in the account (Amazon ECS Developer Guide, "Request throttling for the Amazon
//! ECS API", table "Request Token Bucket Sizes and Refill Rates"). The categories of the actions
//! our functions call, with only those actions listed:

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::counted::Latency;

/// One of ECS's token buckets: `burst` tokens at most, `refill` tokens a second.
pub struct Bucket {
    pub category: &'static str,
    pub actions: &'static [&'static str],
    pub burst: f64,
    pub refill: f64,
}

pub const ECS_BUCKETS: &[Bucket] = &[
    Bucket {
        category: "Cluster resource read actions",
        actions: &[
            "ListContainerInstances",
            "DescribeContainerInstances",
            "ListTasks",
            "DescribeTasks",
        ],
        burst: 100.0,
        refill: 20.0,
    },
    Bucket {
        category: "Cluster resource modify actions",
        actions: &["StartTask", "StopTask"],
        burst: 100.0,
        refill: 40.0,
    },
    Bucket {
        category: "Cluster read actions",
        actions: &["DescribeClusters"],
        burst: 50.0,
        refill: 20.0,
    },
    Bucket {
        category: "Task definition read actions",
        actions: &["DescribeTaskDefinition"],
        burst: 50.0,
        refill: 20.0,
    },
];

/// When each ECS call of these actions began, in order.
pub fn times(log: &[(f64, String)], actions: &[&str]) -> Vec<f64> {
    let mut t: Vec<f64> = log
        .iter()
        .filter(|(_, op)| {
            op.strip_prefix("ECS.")
                .is_some_and(|a| actions.contains(&a))
        })
        .map(|(at, _)| *at)
        .collect();
    t.sort_by(f64::total_cmp);
    t
}

/// The most calls in any one second (a window [t, t + 1 s) from some call), and when it began.
pub fn peak(times: &[f64]) -> (usize, f64) {
    let (mut best, mut at, mut lo) = (0, 0.0, 0);
    for (hi, t) in times.iter().enumerate() {
        while *t - times[lo] >= 1.0 - 1e-9 {
            lo += 1;
        }
        if hi + 1 - lo > best {
            best = hi + 1 - lo;
            at = times[lo];
        }
    }
    (best, at)
}

/// What the bucket makes of these calls alone: the fewest tokens it held, and the calls it would
/// have throttled. The bucket starts full and refills continuously (ECS adds the refill once a
/// second; the difference is under one second's refill).
pub fn against(times: &[f64], b: &Bucket) -> (f64, usize) {
    let (mut tokens, mut last, mut fewest, mut throttled) = (b.burst, 0.0, b.burst, 0);
    for &t in times {
        tokens = (tokens + (t - last) * b.refill).min(b.burst);
        last = t;
        if tokens >= 1.0 {
            tokens -= 1.0;
        } else {
            throttled += 1;
        }
        fewest = f64::min(fewest, tokens);
    }
    (fewest, throttled)
}

/// Markdown: the ECS calls of `log` by class (`classes`: label and actions) with their peak in
/// any one second and their mean over `span` seconds, then by ECS's buckets.
pub fn tables(log: &[(f64, String)], classes: &[(&str, &[&str])], span: f64) -> String {
    let mut out = String::from(
        "| ECS calls | calls | peak in any 1 s | mean over the run |\n|---|---:|---:|---:|\n",
    );
    for (label, actions) in classes {
        let t = times(log, actions);
        let (p, at) = peak(&t);
        out.push_str(&format!(
            "| {label} | {} | {p} /s (from {at:.1} s) | {:.1} /s |\n",
            t.len(),
            t.len() as f64 / span.max(1e-9),
        ));
    }
    out.push_str(
        "\n| ECS bucket (per account and Region) | our actions in it | calls | peak in any 1 s | burst / refill | fewest tokens left | throttled |\n\
         |---|---|---:|---:|---:|---:|---:|\n",
    );
    for b in ECS_BUCKETS {
        let t = times(log, b.actions);
        if t.is_empty() {
            continue;
        }
        let (p, _) = peak(&t);
        let (fewest, throttled) = against(&t, b);
        out.push_str(&format!(
            "| {} | {} | {} | {p} /s | {} / {} per s | {fewest:.0} | {throttled} |\n",
            b.category,
            b.actions.join(", "),
            t.len(),
            b.burst,
            b.refill,
        ));
    }
    out
}

/// Each invocation's (start, end), and each call's (start, operation).
pub type Replayed = (Vec<(f64, f64)>, Vec<(f64, String)>);

/// Invocations replayed on one clock: each makes its calls (`ops`, in order) one after another at
/// `latency`, at most `concurrency` of them at once, started in the order given as others end,
/// the first at `start`. `paced`: a call that finds its ECS bucket empty waits for the next token
/// (as if a retry came exactly then; the SDK's backoff waits longer, and gives up after a few)
/// instead of going through; the buckets start full. Returns each invocation's start and end,
/// and when each call began.
pub fn replay(
    invocations: &[Vec<String>],
    concurrency: usize,
    start: f64,
    latency: &Latency,
    paced: bool,
) -> Replayed {
    let us = |t: f64| (t * 1e6).round() as i64;
    let mut spans = vec![(start, start); invocations.len()];
    let mut log = Vec::new();
    let mut tokens: Vec<(f64, f64)> = ECS_BUCKETS.iter().map(|b| (b.burst, start)).collect();
    let mut queue: BinaryHeap<Reverse<(i64, usize, usize)>> = BinaryHeap::new();
    let mut next = 0;
    while next < invocations.len().min(concurrency.max(1)) {
        queue.push(Reverse((us(start), next, 0)));
        next += 1;
    }
    while let Some(Reverse((at, inv, call))) = queue.pop() {
        let t = at as f64 / 1e6;
        if call == 0 {
            spans[inv].0 = t;
        }
        let Some(op) = invocations[inv].get(call) else {
            spans[inv].1 = t;
            if next < invocations.len() {
                queue.push(Reverse((at, next, 0)));
                next += 1;
            }
            continue;
        };
        let bucket = ECS_BUCKETS.iter().position(|b| {
            op.strip_prefix("ECS.")
                .is_some_and(|a| b.actions.contains(&a))
        });
        if let (true, Some(i)) = (paced, bucket) {
            let b = &ECS_BUCKETS[i];
            let (have, last) = tokens[i];
            let have = (have + (t - last) * b.refill).min(b.burst);
            if have < 1.0 {
                tokens[i] = (have, t);
                queue.push(Reverse((us(t + (1.0 - have) / b.refill) + 1, inv, call)));
                continue;
            }
            tokens[i] = (have - 1.0, t);
        }
        log.push((t, op.clone()));
        queue.push(Reverse((us(t + latency.of(op)), inv, call + 1)));
    }
    (spans, log)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_counts_the_busiest_second() {
        let t = [0.0, 0.5, 0.99, 1.0, 1.2, 1.3, 1.9, 5.0];
        assert_eq!(peak(&t), (5, 0.5));
        assert_eq!(peak(&[]).0, 0);
    }

    #[test]
    fn a_bucket_throttles_past_its_burst_and_refill() {
        let b = &ECS_BUCKETS[1]; // 100, 40 a second
        let at_once: Vec<f64> = (0..150).map(|_| 0.0).collect();
        assert_eq!(against(&at_once, b).1, 50);
        let steady: Vec<f64> = (0..1000).map(|i| i as f64 / 40.0).collect();
        assert_eq!(against(&steady, b).1, 0, "at the refill rate, never");
    }

    #[test]
    fn replay_runs_a_few_at_once_and_paces_to_the_bucket() {
        let lat = Latency {
            ecs_s: 0.05,
            dynamodb_s: 0.01,
            sqs_s: 0.02,
        };
        let reads = |n: usize| vec!["ECS.ListTasks".to_owned(); n];
        // Three invocations of 10 reads, two at once: the third starts when the first ends.
        let (spans, log) = replay(&[reads(10), reads(10), reads(10)], 2, 0.0, &lat, false);
        assert_eq!(log.len(), 30);
        assert!((spans[0].1 - 0.5).abs() < 1e-6 && (spans[2].0 - 0.5).abs() < 1e-6);
        assert!((spans[2].1 - 1.0).abs() < 1e-6);
        // 300 reads from 5 at once: the bucket (100, 20 a second) holds them to its refill.
        let five: Vec<Vec<String>> = (0..5).map(|_| reads(60)).collect();
        let (spans, log) = replay(&five, 5, 0.0, &lat, true);
        let end = spans.iter().map(|s| s.1).fold(0.0, f64::max);
        assert!(end >= 10.0 - 1e-6, "(300 - 100) / 20 s at least: {end}");
        let t: Vec<f64> = log.iter().map(|c| c.0).collect();
        let b = &ECS_BUCKETS[0];
        assert_eq!(against(&t, b).1, 0, "paced: nothing throttled");
    }
}

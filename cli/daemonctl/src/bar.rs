//! The progress bar on a terminal: the phase, the elapsed time and the other counts on a line, the
//! hosts updated of desired as a bar under it. ASCII, no colour: it reads the same in any
//! terminal, locale and captured screen.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::progress::Snapshot;

/// Two lines, so that the longest phase and the counts fit 80 columns and the bar any width.
const TEMPLATE: &str =
    "{spinner} {prefix}  {elapsed_precise}  {wide_msg}\n  [{wide_bar}] {pos}/{len} updated";

pub struct Bar {
    pb: ProgressBar,
}

impl Bar {
    /// A bar drawn to `target`, its clock started `elapsed` ago.
    pub fn new(target: ProgressDrawTarget, elapsed: Duration) -> Self {
        let style = ProgressStyle::with_template(TEMPLATE)
            .expect("the template parses")
            .progress_chars("=> ")
            .tick_chars("|/-\\ ");
        let pb = ProgressBar::with_draw_target(None, target)
            .with_style(style)
            .with_elapsed(elapsed);
        Self { pb }
    }

    /// Keeps the spinner and the elapsed time moving between polls.
    pub fn tick_steadily(&self) {
        self.pb.enable_steady_tick(Duration::from_millis(200));
    }

    pub fn show(&self, s: &Snapshot) {
        let n = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |n| n.to_string());
        match s.desired {
            Some(desired) => self.pb.set_length(desired),
            // Unknown: an empty bar rather than indicatif's full one of a length 0.
            None => self.pb.unset_length(),
        }
        let done = s.updated.or(s.available).unwrap_or(0);
        self.pb.set_position(done.min(s.desired.unwrap_or(done)));
        self.pb.set_prefix(s.phase.to_string());
        self.pb.set_message(format!(
            "{} available, {} failed, {} unschedulable",
            n(s.available),
            n(s.failed),
            n(s.unschedulable)
        ));
    }

    /// A line above the bar, which stays when the bar moves on.
    pub fn println(&self, line: impl AsRef<str>) {
        self.pb.println(line);
    }

    /// Leaves the bar as it last was, spinner stopped.
    pub fn finish(&self) {
        self.pb.abandon();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phase::Phase;
    use indicatif::InMemoryTerm;

    fn snapshot(phase: Phase) -> Snapshot {
        Snapshot {
            phase,
            desired: Some(8),
            updated: Some(4),
            available: Some(3),
            failed: Some(1),
            unschedulable: Some(2),
            halted_reason: None,
        }
    }

    /// The screen of a `cols`-wide terminal after the bar showed `s`.
    fn render(s: &Snapshot, cols: u16) -> String {
        let term = InMemoryTerm::new(4, cols);
        let bar = Bar::new(
            ProgressDrawTarget::term_like(Box::new(term.clone())),
            Duration::from_secs(75),
        );
        bar.show(s);
        bar.finish();
        term.contents()
    }

    #[test]
    fn the_bar_fills_with_hosts_updated_and_names_the_phase_and_the_rest() {
        assert_eq!(
            render(&snapshot(Phase::Baking), 80),
            "  baking  00:01:15  3 available, 1 failed, 2 unschedulable\n  \
             [================================>                               ] 4/8 updated"
        );
        assert_eq!(
            render(&snapshot(Phase::Halted), 80),
            "  halted by the breaker  00:01:15  3 available, 1 failed, 2 unschedulable\n  \
             [================================>                               ] 4/8 updated"
        );
    }

    #[test]
    fn the_bar_takes_the_terminals_width_and_the_counts_line_is_cut_not_wrapped() {
        assert_eq!(
            render(&snapshot(Phase::Other("verifying".into())), 40),
            "  verifying  00:01:15  3 available, 1 fa\n  \
             [============>           ] 4/8 updated"
        );
    }

    #[test]
    fn unknown_counts_are_dashes_and_an_empty_bar() {
        let s = Snapshot {
            phase: Phase::NotDeployed,
            desired: None,
            updated: None,
            available: None,
            failed: None,
            unschedulable: None,
            halted_reason: None,
        };
        assert_eq!(
            render(&s, 60),
            "  not deployed  00:01:15  - available, - failed, - unschedul\n  \
             [                                            ] 0/0 updated"
        );
        // Nothing to do is done; a rollout that updated every host too.
        let mut none = snapshot(Phase::Completed);
        none.desired = Some(0);
        none.updated = Some(0);
        assert!(render(&none, 40).ends_with("[========================] 0/0 updated"));
        let mut done = snapshot(Phase::Completed);
        done.updated = Some(8);
        done.available = Some(8);
        assert!(render(&done, 40).ends_with("[========================] 8/8 updated"));
    }
}

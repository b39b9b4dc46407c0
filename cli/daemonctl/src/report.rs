//! Where a rollout's progress goes: a bar on a terminal, timestamped lines anywhere else (CI,
//! pipes, files), where a redrawn bar would only be noise.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::ProgressDrawTarget;

use crate::bar::Bar;
use crate::progress::Snapshot;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    Stdout,
    Stderr,
}

impl Sink {
    /// A terminal that can redraw a line (not `TERM=dumb`).
    fn is_terminal(self) -> bool {
        let tty = match self {
            Self::Stdout => std::io::stdout().is_terminal(),
            Self::Stderr => std::io::stderr().is_terminal(),
        };
        tty && std::env::var("TERM").map_or(true, |t| t != "dumb")
    }

    fn print(self, line: &str) {
        match self {
            Self::Stdout => println!("{line}"),
            Self::Stderr => eprintln!("{line}"),
        }
    }
}

pub struct Reporter {
    sink: Sink,
    started: Instant,
    bar: Option<Bar>,
    /// The last line printed: a line is printed only when it says something new (on a terminal,
    /// when the phase changed; the bar shows the rest).
    last: String,
}

impl Reporter {
    pub fn new(sink: Sink) -> Self {
        let bar = sink.is_terminal().then(|| {
            let target = match sink {
                Sink::Stdout => ProgressDrawTarget::stdout(),
                Sink::Stderr => ProgressDrawTarget::stderr(),
            };
            Bar::new(target, Duration::ZERO)
        });
        Self {
            sink,
            started: Instant::now(),
            bar,
            last: String::new(),
        }
    }

    /// One poll: on a terminal `s` on the bar, and its line above it when the phase changed;
    /// elsewhere `line` (which may say more than `s`) when it changed.
    pub fn show(&mut self, s: &Snapshot, line: &str) {
        let (key, line) = match &self.bar {
            Some(_) => (s.phase_text(), s.line()),
            None => (line.to_owned(), line.to_owned()),
        };
        if key != self.last {
            self.note(&line);
        }
        if let Some(bar) = &self.bar {
            bar.show(s);
            // Not before: until the first answer there is nothing to draw.
            if self.last.is_empty() {
                bar.tick_steadily();
            }
        }
        self.last = key;
    }

    /// A timestamped line, above the bar on a terminal.
    pub fn note(&self, line: &str) {
        let line = format!("[{:>4}s] {line}", self.started.elapsed().as_secs());
        match &self.bar {
            Some(bar) => bar.println(line),
            None => self.sink.print(&line),
        }
    }

    /// The bar stays on screen as it last was.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}

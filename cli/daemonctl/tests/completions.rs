//! `daemonctl completions bash` sourced into bash completes what a person types.

use std::process::Command;

/// The words bash offers for `line` (the last word is the one being completed).
fn complete(line: &[&str]) -> Vec<String> {
    let words = line
        .iter()
        .map(|w| format!("'{w}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let cword = line.len() - 1;
    let prev = line[cword.saturating_sub(1)];
    let script = format!(
        "source <('{bin}' completions bash) && COMP_WORDS=({words}) && COMP_CWORD={cword} && \
         _daemonctl daemonctl '{cur}' '{prev}' && printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        bin = env!("CARGO_BIN_EXE_daemonctl"),
        cur = line[cword],
    );
    let out = Command::new("bash").args(["-c", &script]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_completes_subcommands_flags_and_values() {
    assert_eq!(complete(&["daemonctl", "env", "st"]), ["status"]);
    assert_eq!(complete(&["daemonctl", "dep"]), ["deploy", "deployments"]);
    assert_eq!(
        complete(&["daemonctl", "env", "status", "web", "--w"]),
        ["--watch"]
    );
    assert_eq!(
        complete(&["daemonctl", "dlq", "replay", "--dlq", "t"]),
        ["task-events"]
    );
    let shells = complete(&["daemonctl", "completions", ""]);
    for shell in ["bash", "elvish", "fish", "powershell", "zsh"] {
        assert!(shells.iter().any(|s| s == shell), "{shells:?}");
    }
}

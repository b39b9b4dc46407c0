use std::process::ExitCode;

use clap::Parser;
use daemonctl::{cli::Cli, Outcome};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match daemonctl::run(cli).await {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Unsuccessful) => ExitCode::from(3),
        Err(e) => {
            eprintln!("daemonctl: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

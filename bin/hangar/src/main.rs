//! `hangar`: the control plane (`hangar server`) and its command-line client.

mod client;
mod server;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "hangar",
    version,
    about = "Hangar: a control plane for cloud development environments."
)]
struct Cli {
    #[command(flatten)]
    global: client::GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the control plane (or `hangar server migrate`).
    Server(Box<server::ServerArgs>),
    #[command(flatten)]
    Client(client::ClientCommand),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Server(args) => {
            server::init_tracing(&args.log_format, &args.log_level);
            match &args.action {
                Some(server::ServerAction::Migrate { check }) => {
                    match server::migrate(&args, *check).await {
                        Ok(0) => Ok(()),
                        Ok(_) => return ExitCode::FAILURE,
                        Err(e) => Err(e),
                    }
                }
                None => server::run(&args).await,
            }
        }
        Command::Client(cmd) => client::run(cmd, &cli.global).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{err:#}");
            ExitCode::FAILURE
        }
    }
}

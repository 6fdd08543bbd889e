//! `starling admin-token create --principal User:ops`: a fresh bearer token for the broker's
//! admin HTTP endpoint, and the `admin.auth.tokens.file` line that makes the broker accept it
//! (the token's SHA-256, never the token). Talks to no broker.
//!
//! The token is printed once, on the first line of standard output, and the file line on the
//! second (`--json`: both in one object); nothing keeps the token, so a lost one is replaced by
//! a new one and its line removed from the file.

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;
use starling_broker::admin::auth::{new_token, tokens_file_line};

#[derive(Debug, clap::Args)]
pub struct AdminTokenArgs {
    #[command(subcommand)]
    command: AdminTokenCommand,
}

#[derive(Debug, Subcommand)]
enum AdminTokenCommand {
    /// Make a token: prints the token, then the line for admin.auth.tokens.file.
    Create {
        /// The principal the token acts as, for the authorizer (`User:ops`).
        #[arg(long, value_name = "TYPE:NAME")]
        principal: String,
        /// Print {"principal", "token", "line"} as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: AdminTokenArgs) -> anyhow::Result<()> {
    crate::topic_cli::exit_on_error(execute(args))
}

fn execute(args: AdminTokenArgs) -> anyhow::Result<()> {
    match args.command {
        AdminTokenCommand::Create { principal, json } => {
            let token = new_token();
            let line = tokens_file_line(&principal, &token)
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("--principal {principal}"))?;
            if json {
                let value = json!({ "principal": principal, "token": token, "line": line });
                println!(
                    "{}",
                    serde_json::to_string_pretty(&value).expect("JSON values serialize")
                );
            } else {
                println!("{token}");
                println!("{line}");
                eprintln!(
                    "The first line is the token (shown only this once; send it as \
                     `Authorization: Bearer TOKEN`), the second the line to add to \
                     admin.auth.tokens.file."
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use starling_broker::admin::auth::AdminTokens;

    use super::*;

    #[test]
    fn a_created_line_admits_its_token_as_the_principal() {
        let token = new_token();
        let line = tokens_file_line("User:ops", &token).unwrap();
        let tokens = AdminTokens::parse(&line).unwrap();
        assert_eq!(tokens.principal(&token), Some("User:ops"));
        assert!(!line.contains(&token));
    }
}

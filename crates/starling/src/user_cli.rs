//! `starling user ...`: SCRAM users on any Kafka-compatible broker (KIP-554's
//! DescribeUserScramCredentials and AlterUserScramCredentials, through `starling-client`), in
//! the spirit of `kafka-configs --entity-type users --alter --add-config 'SCRAM-SHA-256=[…]'`;
//! and the hash lines of the broker's PLAIN users file.
//!
//! * `create NAME [--mechanism M] [--iterations N]`: sets NAME's credential for M (default
//!   SCRAM-SHA-256) from the password on standard input (its first line); the password is
//!   salted here and never sent.
//! * `delete NAME [--mechanism M]`: removes NAME's credential for M, or every one it has.
//! * `list [NAME...]`: users and their mechanisms and iterations (every user when none named).
//! * `hash-password NAME [--iterations N]`: prints the `sasl.plain.users.file` line for NAME
//!   with the password on standard input; talks to no broker.
//!
//! A table by default; `--json` prints the same as JSON. Failures end with a non-zero exit.

use std::io::BufRead;

use anyhow::{bail, Context};
use clap::Subcommand;
use serde_json::json;
use starling_client::scram::{
    ScramAlterResult, ScramAlteration, ScramMechanism, UserScramCredentials, DEFAULT_ITERATIONS,
};

use crate::group_cli::render_table;
use crate::topic_cli::BrokerArgs;

#[derive(Debug, clap::Args)]
pub struct UserArgs {
    #[command(flatten)]
    broker: BrokerArgs,
    #[command(subcommand)]
    command: UserCommand,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a SCRAM user, or change its password; the password is read from standard input.
    Create {
        name: String,
        /// SCRAM-SHA-256 or SCRAM-SHA-512.
        #[arg(long, default_value = "SCRAM-SHA-256", value_parser = parse_mechanism)]
        mechanism: ScramMechanism,
        /// PBKDF2 iterations (the broker accepts 4096 to 16384).
        #[arg(long, default_value_t = DEFAULT_ITERATIONS)]
        iterations: i32,
    },
    /// Delete a user's SCRAM credential for one mechanism, or all of them.
    Delete {
        name: String,
        /// Only this mechanism's credential [default: every one the user has].
        #[arg(long, value_parser = parse_mechanism)]
        mechanism: Option<ScramMechanism>,
    },
    /// List SCRAM users with their mechanisms and iterations.
    List {
        /// Only these users [default: every user with a credential].
        names: Vec<String>,
    },
    /// Print a `sasl.plain.users.file` line for a user, the password read from standard input.
    HashPassword {
        name: String,
        /// PBKDF2-HMAC-SHA512 iterations.
        #[arg(long, default_value_t = starling_broker::sasl::plain::DEFAULT_ITERATIONS)]
        iterations: u32,
    },
}

fn parse_mechanism(name: &str) -> Result<ScramMechanism, String> {
    ScramMechanism::from_name(&name.to_ascii_uppercase())
        .ok_or_else(|| format!("unknown SCRAM mechanism {name:?}: SCRAM-SHA-256 or SCRAM-SHA-512"))
}

/// Runs one `starling user` command, printing its output on stdout. A failure is printed as
/// one `error: ...` line on stderr and ends the process with exit status 1.
pub async fn run(args: UserArgs) -> anyhow::Result<()> {
    crate::topic_cli::exit_on_error(execute(args).await)
}

/// The password: the first line of standard input, without its line ending.
fn read_password() -> anyhow::Result<Vec<u8>> {
    let mut line = Vec::new();
    std::io::stdin()
        .lock()
        .read_until(b'\n', &mut line)
        .context("reading the password from standard input")?;
    while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        line.pop();
    }
    if line.is_empty() {
        bail!("no password on standard input (give it as the first line)");
    }
    Ok(line)
}

async fn execute(args: UserArgs) -> anyhow::Result<()> {
    let json = args.broker.json;
    match args.command {
        UserCommand::HashPassword { name, iterations } => {
            let password = read_password()?;
            let line = starling_broker::sasl::plain::users_file_line(&name, &password, iterations)
                .map_err(anyhow::Error::msg)?;
            if json {
                print!("{}", pretty(json!({ "user": name, "line": line })));
            } else {
                println!("{line}");
            }
        }
        UserCommand::Create {
            name,
            mechanism,
            iterations,
        } => {
            let password = read_password()?;
            let mut client = args.broker.connect.connect().await?;
            let results = client
                .alter_user_scram_credentials(&[ScramAlteration::Upsert {
                    user: name,
                    mechanism,
                    iterations,
                    password,
                }])
                .await?;
            finish_alter(&results, "created", json)?;
        }
        UserCommand::Delete { name, mechanism } => {
            let mut client = args.broker.connect.connect().await?;
            let mechanisms = match mechanism {
                Some(m) => vec![m],
                None => {
                    let described = client
                        .describe_user_scram_credentials(Some(std::slice::from_ref(&name)))
                        .await?;
                    let found = described.into_iter().find(|d| d.user == name);
                    match found.map(|d| d.credentials) {
                        Some(Ok(credentials)) => credentials.into_iter().map(|(m, _)| m).collect(),
                        Some(Err(e)) => bail!("cannot delete {name}: {e}"),
                        None => bail!("cannot delete {name}: the broker did not describe it"),
                    }
                }
            };
            // One request per mechanism: Kafka refuses a user named twice in one request.
            let mut results = Vec::new();
            for mechanism in mechanisms {
                results.extend(
                    client
                        .alter_user_scram_credentials(&[ScramAlteration::Delete {
                            user: name.clone(),
                            mechanism,
                        }])
                        .await?
                        .into_iter()
                        .map(|(user, r)| (format!("{user} ({mechanism})"), r)),
                );
            }
            finish_alter(&results, "deleted", json)?;
        }
        UserCommand::List { names } => {
            let mut client = args.broker.connect.connect().await?;
            let users = client
                .describe_user_scram_credentials((!names.is_empty()).then_some(names.as_slice()))
                .await?;
            print!("{}", render_list(&users, json));
            let failed: Vec<String> = users
                .iter()
                .filter_map(|u| {
                    u.credentials
                        .as_ref()
                        .err()
                        .map(|e| format!("{}: {e}", u.user))
                })
                .collect();
            if !failed.is_empty() {
                bail!("cannot describe {}", failed.join("; "));
            }
        }
    }
    Ok(())
}

/// Prints the alteration's results; an error if any user's failed.
fn finish_alter(results: &[ScramAlterResult], done: &str, json: bool) -> anyhow::Result<()> {
    print!("{}", render_alter(results, done, json));
    let failed: Vec<String> = results
        .iter()
        .filter_map(|(user, r)| r.as_ref().err().map(|e| format!("{user}: {e}")))
        .collect();
    if !failed.is_empty() {
        bail!("cannot alter {}", failed.join("; "));
    }
    Ok(())
}

fn pretty(value: serde_json::Value) -> String {
    format!(
        "{}\n",
        serde_json::to_string_pretty(&value).expect("JSON values serialize")
    )
}

fn render_alter(results: &[ScramAlterResult], done: &str, as_json: bool) -> String {
    if as_json {
        return pretty(json!(results
            .iter()
            .map(|(user, r)| match r {
                Ok(()) => json!({ "user": user, "error": null, "message": null }),
                Err(e) => json!({
                    "user": user,
                    "error": starling_client::error_name(e.error),
                    "message": e.message,
                }),
            })
            .collect::<Vec<_>>()));
    }
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|(user, r)| {
            vec![
                user.clone(),
                match r {
                    Ok(()) => done.to_string(),
                    Err(e) => e.to_string(),
                },
            ]
        })
        .collect();
    render_table(&["USER", "RESULT"], &rows)
}

fn render_list(users: &[UserScramCredentials], as_json: bool) -> String {
    if as_json {
        return pretty(json!(users
            .iter()
            .map(|u| match &u.credentials {
                Ok(credentials) => json!({
                    "user": u.user,
                    "credentials": credentials
                        .iter()
                        .map(|(m, i)| json!({ "mechanism": m.name(), "iterations": i }))
                        .collect::<Vec<_>>(),
                }),
                Err(e) => json!({
                    "user": u.user,
                    "error": starling_client::error_name(e.error),
                    "message": e.message,
                }),
            })
            .collect::<Vec<_>>()));
    }
    let mut sorted: Vec<&UserScramCredentials> = users.iter().collect();
    sorted.sort_by(|a, b| a.user.cmp(&b.user));
    let rows: Vec<Vec<String>> = sorted
        .into_iter()
        .flat_map(|u| match &u.credentials {
            Ok(credentials) => credentials
                .iter()
                .map(|(m, i)| vec![u.user.clone(), m.name().to_string(), i.to_string()])
                .collect::<Vec<_>>(),
            Err(e) => vec![vec![u.user.clone(), e.to_string(), String::new()]],
        })
        .collect();
    render_table(&["USER", "MECHANISM", "ITERATIONS"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use starling_client::{ResponseError, TopicError};

    #[test]
    fn list_prints_one_row_per_credential_sorted_by_user() {
        let users = vec![
            UserScramCredentials {
                user: "bob".into(),
                credentials: Ok(vec![(ScramMechanism::Sha512, 8192)]),
            },
            UserScramCredentials {
                user: "alice".into(),
                credentials: Ok(vec![
                    (ScramMechanism::Sha256, 4096),
                    (ScramMechanism::Sha512, 4096),
                ]),
            },
        ];
        assert_eq!(
            render_list(&users, false),
            "USER   MECHANISM      ITERATIONS\n\
             alice  SCRAM-SHA-256  4096\n\
             alice  SCRAM-SHA-512  4096\n\
             bob    SCRAM-SHA-512  8192\n"
        );
    }

    #[test]
    fn list_json_carries_errors_by_name() {
        let users = vec![UserScramCredentials {
            user: "ghost".into(),
            credentials: Err(TopicError {
                error: ResponseError::ResourceNotFound,
                message: Some(
                    "Attempt to describe a user credential that does not exist: ghost".into(),
                ),
            }),
        }];
        let value: serde_json::Value = serde_json::from_str(&render_list(&users, true)).unwrap();
        assert_eq!(value[0]["error"], "RESOURCE_NOT_FOUND");
    }

    #[test]
    fn mechanisms_parse_case_insensitively_and_refuse_others() {
        assert_eq!(parse_mechanism("scram-sha-512"), Ok(ScramMechanism::Sha512));
        assert!(parse_mechanism("PLAIN").is_err());
    }
}

//! `iob keys create|list|revoke`: API key management on a data directory no server holds (a
//! running server's keys are managed over HTTP: `POST/GET /v1/keys`, `DELETE /v1/keys/{id}`).
//! Prints a new key's plaintext once, on stdout; never prints hashes.

use iob_engine::{EngineError, KeyRequest, SCOPE_NAMES, Scope, parse_lifetime};
use iob_store::StoreError;

use crate::settings::Global;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Create a key; its plaintext is printed once (stdout) and stored only as a hash.
    #[command(
        after_help = "EXAMPLES:\n  iob keys create --scope read:personal --id crm --expires-in 30d\n  iob keys create --scope read:analytics\n  iob keys create --scope write --source app\n  iob keys create --scope admin --id ops"
    )]
    Create {
        /// What the key may do: write (with --source), read:analytics (aggregates only),
        /// read:personal (profiles, timelines, identity) or admin (everything).
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(SCOPE_NAMES))]
        scope: String,
        /// The source a write key sends events for.
        #[arg(long)]
        source: Option<String>,
        /// A name for the key (1-64 of a-z, A-Z, 0-9, '-', '_'); default: the scope and a
        /// random suffix.
        #[arg(long)]
        id: Option<String>,
        /// Lifetime: 90s, 15m, 12h, 30d. Default: never expires.
        #[arg(long, value_name = "LIFETIME")]
        expires_in: Option<String>,
    },
    /// Ids, scopes, origin (config or key file) and expiry of every key; never secrets.
    List {
        /// Print JSON Lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key created by `iob keys create` or `POST /v1/keys` (config keys are removed
    /// from the config).
    Revoke {
        /// The key's id, as `iob keys list` shows it.
        id: String,
    },
    /// Rotate the master key that wraps every person's data key: the data keys are re-wrapped,
    /// no event is rewritten.
    Rotate(crate::cmd::privacy::RotateArgs),
}

pub fn run(global: &Global, cmd: Command) -> anyhow::Result<()> {
    let cfg = global.load()?;
    let engine = global.open(&cfg).map_err(|e| {
        let locked = e.chain().any(|c| {
            matches!(
                c.downcast_ref::<EngineError>(),
                Some(EngineError::Store(StoreError::Locked { .. }))
            )
        });
        if locked {
            e.context(
                "`iob keys` needs the data directory to itself; manage the keys of a running server over HTTP with an admin key: POST /v1/keys, GET /v1/keys, DELETE /v1/keys/ID",
            )
        } else {
            e
        }
    })?;
    match cmd {
        Command::Create {
            scope,
            source,
            id,
            expires_in,
        } => {
            let req = KeyRequest {
                scope: Scope::parse(&scope, source.as_deref())?,
                id,
                expires_in: expires_in.as_deref().map(parse_lifetime).transpose()?,
            };
            let k = engine.create_key(req)?;
            let until = k
                .expires_at
                .map_or("never expires".to_string(), |t| format!("expires {t}"));
            eprintln!(
                "Created key `{}` ({}, {until}). It is shown only now; store it safely:",
                k.id, k.scope
            );
            println!("{}", k.secret);
        }
        Command::List { json } => {
            let keys = engine.list_keys();
            if json {
                for k in &keys {
                    println!("{}", serde_json::to_string(k)?);
                }
            } else {
                println!("{:<28} {:<26} {:<7} EXPIRES", "ID", "SCOPE", "ORIGIN");
                for k in &keys {
                    let expires = match k.expires_at {
                        Some(t) if k.expired => format!("{t} (expired)"),
                        Some(t) => t.to_string(),
                        None => "never".into(),
                    };
                    println!(
                        "{:<28} {:<26} {:<7} {expires}",
                        k.id,
                        k.scope.to_string(),
                        k.origin
                    );
                }
            }
        }
        Command::Revoke { id } => {
            engine.revoke_key(&id)?;
            eprintln!("Revoked key `{id}`.");
        }
        Command::Rotate(a) => crate::cmd::privacy::rotate_on(&engine, a)?,
    }
    engine.close()?;
    Ok(())
}

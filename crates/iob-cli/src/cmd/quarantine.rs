//! `iob quarantine list|replay`: rejected events, their reasons, and replay after a fix.

use iob_engine::Actor;
use iob_types::Purpose;

use crate::settings::Global;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Rejected events and why (open ones; --all includes replayed).
    List {
        #[arg(long)]
        all: bool,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print JSON Lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Re-validate quarantined events against the current config (e.g. a fixed tracking plan)
    /// and store those that now pass.
    Replay {
        /// Only these entries (repeatable); default: every open entry.
        #[arg(long = "id")]
        ids: Vec<u64>,
    },
}

pub fn run(global: &Global, cmd: Command) -> anyhow::Result<()> {
    let cfg = global.load()?;
    let engine = global.open(&cfg)?;
    let permit = engine.permit(Actor::Operator, &Purpose::operations())?;
    match cmd {
        Command::List { all, limit, json } => {
            let entries = engine.quarantine_list(&permit, all, limit)?;
            if json {
                for e in &entries {
                    println!(
                        "{}",
                        serde_json::json!({"id": e.id, "received_at": e.received_at.to_rfc3339(), "source": e.source,
                            "reason": e.reason, "payload": String::from_utf8_lossy(&e.payload)})
                    );
                }
            } else {
                println!(
                    "{:>6}  {:<24}  {:<10}  {:<18}  {:<24}  message",
                    "id", "received", "source", "code", "field"
                );
                for e in &entries {
                    let r = &e.reason["rejection"];
                    println!(
                        "{:>6}  {:<24}  {:<10}  {:<18}  {:<24}  {}",
                        e.id,
                        e.received_at.to_rfc3339(),
                        e.source.as_deref().unwrap_or("-"),
                        r["code"].as_str().unwrap_or("?"),
                        r["field"].as_str().unwrap_or(""),
                        r["message"].as_str().unwrap_or("")
                    );
                }
                eprintln!("{} entries", entries.len());
            }
        }
        Command::Replay { ids } => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let ids = (!ids.is_empty()).then_some(ids);
            let s = rt.block_on(engine.replay_quarantine(&permit, ids.as_deref()))?;
            println!(
                "replayed {}  duplicates {}  still rejected {}",
                s.replayed,
                s.duplicates,
                s.still_rejected.len()
            );
            for (id, r) in &s.still_rejected {
                println!("  {id}: `{}` {}", r.field, r.message);
            }
        }
    }
    engine.close()?;
    Ok(())
}

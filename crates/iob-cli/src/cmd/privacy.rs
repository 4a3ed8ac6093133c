//! `iob privacy erase ID`, `iob privacy export ID`, `iob privacy retention`, and master key
//! rotation: data-subject
//! requests and key management run by the operator on a data directory no server holds.

use iob_engine::{Actor, Engine, MasterKey};
use iob_types::Purpose;

use crate::settings::Global;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Erase a person everywhere: destroy their data keys (their stored events become
    /// unreadable), remove identity links, profile, journey, consent history, quarantined
    /// events. Irreversible.
    Erase {
        /// Any identifier of the person (`user:…`, `email:…`, `person:N`, or a bare value).
        id: String,
    },
    /// Everything held about a person, as JSON, with the purpose of each item.
    Export { id: String },
    /// Destroy now the retention keys of days past their rule's window (`[privacy]
    /// retention_days`); `iob serve` does it every `retention_check_secs`.
    Retention,
}

#[derive(clap::Args)]
pub struct RotateArgs {
    /// A file with the new master key (64 hex digits or base64 of 32 bytes). Without it, the
    /// generated key in DATA_DIR/secrets/master.key is replaced by a new one.
    #[arg(long)]
    pub new_key_file: Option<std::path::PathBuf>,
}

fn open(global: &Global) -> anyhow::Result<(Engine, iob_engine::Permit)> {
    let cfg = global.load()?;
    let engine: Engine = global.open(&cfg)?;
    let permit = engine.permit(Actor::Operator, &Purpose::operations())?;
    Ok((engine, permit))
}

pub fn run(global: &Global, c: Command) -> anyhow::Result<()> {
    if let Command::Erase { id } = &c {
        return erase(global, id);
    }
    let (engine, permit) = open(global)?;
    let out = match c {
        Command::Erase { .. } => unreachable!("handled above"),
        Command::Export { id } => serde_json::to_value(engine.export_person(&permit, &id)?)?,
        Command::Retention => {
            serde_json::json!({ "day_keys_destroyed": engine.enforce_retention()? })
        }
    };
    engine.close()?;
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

/// Erasure with every derived store open, so it reaches them before this returns.
fn erase(global: &Global, id: &str) -> anyhow::Result<()> {
    let cfg = global.load()?;
    let engine = std::sync::Arc::new(global.open(&cfg)?);
    let permit = engine.permit(Actor::Operator, &Purpose::operations())?;
    let analytics = iob_query::Analytics::open(engine.clone(), &cfg.analytics, false)?;
    // The recommendation models hold per-person factors: the erasure must reach them.
    iob_recommend::service::register_for_erasure(&engine)?;
    let report = engine.erase_person(&permit, id)?;
    drop(analytics);
    let engine =
        std::sync::Arc::try_unwrap(engine).map_err(|_| anyhow::anyhow!("engine still in use"))?;
    engine.close()?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// `iob keys rotate` on an open engine: re-wraps every data key under a new master key; no
/// event is rewritten.
pub fn rotate_on(engine: &Engine, a: RotateArgs) -> anyhow::Result<()> {
    let new = match &a.new_key_file {
        Some(f) => Some(MasterKey::from_text(
            &std::fs::read_to_string(f)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", f.display()))?,
        )?),
        None => None,
    };
    let permit = engine.permit(Actor::Operator, &Purpose::operations())?;
    let old = engine.master_key_id();
    let (id, n) = engine.rotate_master_key(&permit, new)?;
    println!("re-wrapped {n} data keys: master key {old} -> {id}");
    if a.new_key_file.is_some() {
        println!(
            "point privacy.master_key_file (or IOB_MASTER_KEY) at the new key before the next start"
        );
    }
    Ok(())
}

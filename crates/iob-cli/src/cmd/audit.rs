//! `iob audit verify` and `iob audit list`: check the audit log's chain and read its records,
//! from the files alone (no engine, no lock: both run next to a live server).

use iob_engine::ListFilter;

use crate::settings::Global;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Walk the hash chain: every record's keyed hash, sequence and link, and the end against
    /// audit/HEAD. Exits non-zero naming the first bad record.
    #[command(
        after_help = "Prints the record count and the head hash on success: copy that hash somewhere this host cannot write, and compare it later, to detect a rollback by someone holding the key."
    )]
    Verify,
    /// The newest audit records, newest first (JSON Lines). Does not verify them.
    List(ListArgs),
}

#[derive(clap::Args)]
pub struct ListArgs {
    /// At most this many records.
    #[arg(long, short = 'n', default_value_t = 50)]
    limit: usize,
    /// Only reads of this person: their pseudonym (hex, as `iob identity explain` shows).
    #[arg(long)]
    subject: Option<String>,
    /// Only reads by this API key id (or `operator` for the command line).
    #[arg(long)]
    actor: Option<String>,
    /// Only this action (`profile.read`, `timeline.read`, `identity.read`, `log.read`, ...).
    #[arg(long)]
    action: Option<String>,
}

pub fn run(global: &Global, c: Command) -> anyhow::Result<()> {
    let dir = global.load()?.data_dir();
    match c {
        Command::Verify => {
            let r = iob_engine::audit_verify(&dir)?;
            for n in &r.notes {
                eprintln!("note: {n}");
            }
            if let Some(p) = &r.problem {
                anyhow::bail!(
                    "audit log FAILED verification after {} good records: {p}",
                    r.records
                );
            }
            match &r.head {
                Some((seq, hash)) => println!(
                    "audit log OK: {} records in {} segment(s); head record {seq}, hash {hash}",
                    r.records, r.segments
                ),
                None => println!("audit log OK: no records"),
            }
            Ok(())
        }
        Command::List(a) => {
            let filter = ListFilter {
                subject: a.subject,
                actor: a.actor,
                action: a.action,
                limit: a.limit,
            };
            for r in iob_engine::audit_list(&dir, &filter)? {
                println!("{}", serde_json::to_string(&r)?);
            }
            Ok(())
        }
    }
}

//! `iob profile ID`, `iob timeline ID`, `iob identity explain ID`, `iob rebuild`: offline reads
//! of persons (each under a declared purpose) and the recomputation of identity and profiles
//! from the log.

use iob_engine::{Actor, Engine};
use iob_types::Purpose;

use crate::settings::Global;

#[derive(clap::Args)]
pub struct PersonArgs {
    /// Any identifier of the person: a user id, anonymous id, device id, e-mail, phone, or
    /// `kind:value` (`email:ada@example.com`), or `person:N`.
    id: String,
    /// Why you read this person's data (a configured purpose).
    #[arg(long, default_value = "analytics")]
    purpose: String,
}

#[derive(clap::Args)]
pub struct ProfileArgs {
    #[command(flatten)]
    person: PersonArgs,
    /// Evaluate rolling windows, recency and affinities as of this time (ISO-8601), e.g. the
    /// end of an imported history; default now.
    #[arg(long)]
    at: Option<String>,
}

#[derive(clap::Args)]
pub struct TimelineArgs {
    #[command(flatten)]
    person: PersonArgs,
    /// Events per page (newest first).
    #[arg(long, short = 'n', default_value_t = 20)]
    limit: usize,
    /// Continue before this cursor (the `next` printed by the previous page).
    #[arg(long)]
    before: Option<String>,
}

#[derive(clap::Subcommand)]
pub enum IdentityCommand {
    /// The events that linked each identifier of a person, merges, and refused links.
    Explain(PersonArgs),
}

fn open(global: &Global, purpose: &str) -> anyhow::Result<(Engine, iob_engine::Permit)> {
    let cfg = global.load()?;
    let engine: Engine = global.open(&cfg)?;
    let permit = engine.permit(Actor::Operator, &Purpose::new(purpose)?)?;
    Ok((engine, permit))
}

fn print(v: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

pub fn profile(global: &Global, a: ProfileArgs) -> anyhow::Result<()> {
    let at =
        a.at.as_deref()
            .map(|t| iob_types::Timestamp::parse("--at", t))
            .transpose()?;
    let (engine, permit) = open(global, &a.person.purpose)?;
    let p = engine.profile(&permit, &a.person.id, at)?;
    engine.close()?;
    match p {
        Some(p) => print(&p),
        None => anyhow::bail!("no person is known by `{}`", a.person.id),
    }
}

pub fn timeline(global: &Global, a: TimelineArgs) -> anyhow::Result<()> {
    let (engine, permit) = open(global, &a.person.purpose)?;
    let page = engine.journey(&permit, &a.person.id, a.before.as_deref(), a.limit)?;
    engine.close()?;
    let Some(page) = page else {
        anyhow::bail!("no person is known by `{}`", a.person.id);
    };
    for e in &page.events {
        println!("{}", serde_json::to_string(e)?);
    }
    match &page.next {
        Some(c) => eprintln!("more: iob timeline {} --before {c}", a.person.id),
        None => eprintln!("(start of the journey)"),
    }
    Ok(())
}

pub fn identity(global: &Global, c: IdentityCommand) -> anyhow::Result<()> {
    let IdentityCommand::Explain(a) = c;
    let (engine, permit) = open(global, &a.purpose)?;
    let report = engine.explain_identity(&permit, &a.id)?;
    engine.close()?;
    match report {
        Some(r) => print(&r),
        None => anyhow::bail!("no person is known by `{}`", a.id),
    }
}

pub fn rebuild(global: &Global) -> anyhow::Result<()> {
    let (engine, permit) = open(global, "operations")?;
    let r = engine.rebuild(&permit)?;
    engine.close()?;
    println!(
        "rebuilt identity and profiles from {} events in {:.2}s: {} persons, {} identifiers; equal to the online state: {}",
        r.events, r.seconds, r.persons, r.identifiers, r.equal_to_online
    );
    anyhow::ensure!(
        r.equal_to_online,
        "the rebuilt state differs from the online state"
    );
    Ok(())
}

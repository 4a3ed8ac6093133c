//! Config loading for every command (file < environment < flags) and logging setup.

use std::path::PathBuf;

use anyhow::Context;
use iob_engine::{Config, Engine, NewKey, Scope};

pub struct Global {
    pub config: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
}

impl Global {
    /// The layered configuration.
    pub fn load(&self) -> anyhow::Result<Config> {
        let mut cfg = Config::load(self.config.as_deref(), std::env::vars())
            .context("loading configuration")?;
        if let Some(d) = &self.data_dir {
            cfg.data_dir = Some(d.clone());
        }
        Ok(cfg)
    }

    /// Opens the engine; prints keys created on this first start, once.
    pub fn open(&self, cfg: &Config) -> anyhow::Result<Engine> {
        let (engine, fresh) = Engine::open(cfg)
            .with_context(|| format!("opening data directory {}", cfg.data_dir().display()))?;
        print_new_keys(&fresh);
        Ok(engine)
    }
}

pub fn print_new_keys(fresh: &[NewKey]) {
    if fresh.is_empty() {
        return;
    }
    eprintln!("First start: created these keys. They are shown ONCE and stored only as hashes:");
    for k in fresh {
        let what = match &k.scope {
            Scope::Write { source } => format!("write key for source `{source}`"),
            other => format!("{} key", other.name()),
        };
        eprintln!("  {what:<32} {}", k.secret);
    }
    eprintln!(
        "Set IOB_WRITE_KEY / IOB_ADMIN_KEY or [[sources]] / [admin] in the config to choose your own."
    );
}

pub fn init_logging(filter: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.compact().init();
    }
}

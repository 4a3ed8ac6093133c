//! `iob serve`: the collector and admin API until SIGINT/SIGTERM, then a clean checkpoint.

use std::sync::Arc;

use anyhow::Context;

use crate::settings::Global;

#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on (default 127.0.0.1:8088; also IOB_SERVER__LISTEN or [server] listen).
    #[arg(long)]
    pub listen: Option<String>,
}

pub fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    let mut cfg = global.load()?;
    if let Some(l) = args.listen {
        cfg.server.listen = l;
    }
    let engine = Arc::new(global.open(&cfg)?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(&cfg.server.listen)
            .await
            .with_context(|| format!("listening on {}", cfg.server.listen))?;
        let addr = listener.local_addr()?;
        // Install the signal handlers before announcing the address: a supervisor that sends
        // SIGTERM right after start must get a clean shutdown, not the default kill.
        let shutdown = shutdown_signal()?;
        tracing::info!(%addr, data_dir = %cfg.data_dir().display(), sources = ?engine.sources(), "iob serving");
        // Machine-readable line for scripts and tests that start the server on port 0.
        println!("listening on http://{addr}");
        let router = iob_server::router(engine.clone(), &cfg.server);
        iob_server::serve(listener, router, shutdown).await?;
        anyhow::Ok(())
    })?;
    drop(rt);
    let engine =
        Arc::try_unwrap(engine).map_err(|_| anyhow::anyhow!("engine still in use at shutdown"))?;
    engine.close().context("closing the data directory")?;
    tracing::info!("stopped cleanly");
    Ok(())
}

fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    #[cfg(unix)]
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("installing the SIGINT handler")?;
    Ok(async move {
        #[cfg(unix)]
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down: finishing in-flight requests");
    })
}

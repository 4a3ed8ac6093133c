//! `iob serve`: the collector and admin API until SIGINT/SIGTERM, then a clean checkpoint.

use std::sync::Arc;

use anyhow::Context;

use crate::settings::Global;

#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on (default 127.0.0.1:8088; also IOB_SERVER__LISTEN or [server] listen).
    #[arg(long)]
    pub listen: Option<String>,
    /// Also subscribe to this MQTT broker for readings, e.g. mqtt://127.0.0.1:1883 (also
    /// IOB_MQTT__URL or [mqtt] url).
    #[arg(long, value_name = "URL")]
    pub mqtt: Option<String>,
    /// MQTT topic filter to subscribe to (repeatable; replaces [mqtt] topics), e.g. `devices/#`.
    #[arg(long = "mqtt-topic", value_name = "FILTER")]
    pub mqtt_topics: Vec<String>,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key; also [server] tls_cert).
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of --tls-cert (also [server] tls_key).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
}

pub fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    let mut cfg = global.load()?;
    if let Some(l) = args.listen {
        cfg.server.listen = l;
    }
    if let Some(url) = args.mqtt {
        cfg.mqtt.url = Some(url);
    }
    if !args.mqtt_topics.is_empty() {
        cfg.mqtt.topics = args.mqtt_topics;
    }
    if let (Some(cert), Some(key)) = (args.tls_cert, args.tls_key) {
        cfg.server.tls_cert = Some(cert);
        cfg.server.tls_key = Some(key);
    }
    let engine = Arc::new(global.open(&cfg)?);
    // Models load from the data directory (trained now if there are none yet and events exist).
    let recommend = iob_recommend::Recommender::open(engine.clone(), &cfg)
        .context("loading the recommendation models")?;
    // The columnar store: registered for erasure, compacted in the background.
    let analytics = Arc::new(
        iob_query::Analytics::open(engine.clone(), &cfg.analytics, true)
            .context("opening the columnar store")?,
    );
    let mqtt = match cfg.mqtt.url {
        Some(_) => Some(iob_server::mqtt::MqttSource::new(
            engine.clone(),
            &cfg.mqtt,
            cfg.collect.max_event_bytes,
        )?),
        None => None,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        let tls = match (&cfg.server.tls_cert, &cfg.server.tls_key) {
            (Some(cert), Some(key)) => Some(
                iob_server::load_tls(cert, key)
                    .await
                    .with_context(|| {
                        format!(
                            "loading the TLS certificate {} and key {} (PEM files)",
                            cert.display(),
                            key.display()
                        )
                    })?,
            ),
            _ => None,
        };
        let listener = tokio::net::TcpListener::bind(&cfg.server.listen)
            .await
            .with_context(|| format!("listening on {}", cfg.server.listen))?;
        let addr = listener.local_addr()?;
        // Install the signal handlers before announcing the address: a supervisor that sends
        // SIGTERM right after start must get a clean shutdown, not the default kill.
        let signal = shutdown_signal()?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let shutdown = async move {
            signal.await;
            let _ = stop_tx.send(true);
        };
        let mqtt = mqtt.map(|source| tokio::spawn(source.run(stop_rx)));
        tracing::info!(%addr, data_dir = %cfg.data_dir().display(), sources = ?engine.sources(), "iob serving");
        // Machine-readable line for scripts and tests that start the server on port 0.
        let scheme = if tls.is_some() { "https" } else { "http" };
        println!("listening on {scheme}://{addr}");
        let router = iob_server::router_with(
            iob_server::AppState {
                engine: engine.clone(),
                analytics: Some(analytics.clone()),
                recommend: Some(recommend.clone()),
            },
            &cfg.server,
        );
        let served = match tls {
            Some(tls) => iob_server::serve_tls(listener, router, tls, shutdown).await,
            None => iob_server::serve(listener, router, shutdown).await,
        };
        // The MQTT source stops with the HTTP server (its sender is gone either way) after
        // storing and acknowledging what it received.
        if let Some(task) = mqtt {
            let _ = task.await;
        }
        served?;
        anyhow::Ok(())
    })?;
    drop(rt);
    drop(recommend);
    // Stops the compactor (it holds the engine) before the directory is closed.
    drop(analytics);
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

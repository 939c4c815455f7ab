//! Shutdown flows from one root `CancellationToken`: a signal cancels it, and the HTTP server,
//! the SSE streams and every background service watch it.

use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

/// Cancels `token` on the first SIGINT or SIGTERM (or returns when it is cancelled otherwise).
pub async fn cancel_on_signal(token: CancellationToken) {
    let mut terminate = match signal(SignalKind::terminate()) {
        Ok(stream) => stream,
        Err(err) => {
            tracing::error!(error = %err, "cannot listen for SIGTERM; only SIGINT will stop Baton");
            token.cancelled().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received; shutting down"),
        _ = terminate.recv() => tracing::info!("SIGTERM received; shutting down"),
        _ = token.cancelled() => return,
    }
    token.cancel();
}

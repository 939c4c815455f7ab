//! Shutdown flows from one root `CancellationToken`: a signal cancels it, and the HTTP server,
//! the SSE streams and every background service watch it.

use std::future::Future;

use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

/// Installs the SIGINT and SIGTERM handlers now (so a signal that arrives a moment later is
/// already handled, not fatal) and returns the future that cancels `token` on the first one.
pub fn cancel_on_signal(token: CancellationToken) -> std::io::Result<impl Future<Output = ()>> {
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("SIGINT received; shutting down"),
            _ = terminate.recv() => tracing::info!("SIGTERM received; shutting down"),
            _ = token.cancelled() => return,
        }
        token.cancel();
    })
}

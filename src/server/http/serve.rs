//! Accepting connections (HTTP/1.1): at most `max_http_connections` at once (the next ones wait
//! in the kernel's backlog until one ends), each with a deadline for its request head that also
//! ends a silent or idle keep-alive connection (a slowloris client holds nothing for long), the client's address
//! in every request, and a graceful end: on shutdown no new connection is accepted and open ones
//! finish their requests.

use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};

use axum::{extract::ConnectInfo, Router};
use hyper::server::conn::http1;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, sync::Semaphore};
use tokio_util::sync::CancellationToken;

/// The limits of the listener.
#[derive(Clone, Copy, Debug)]
pub struct ServeLimits {
    /// Connections served at once.
    pub max_connections: usize,
    /// How long a client may take to send a request's head, and how long an idle keep-alive
    /// connection stays open.
    pub header_read_timeout: Duration,
}

/// Serves `router` on `listener` until `shutdown`, then lets open connections finish their
/// requests for up to `drain`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    shutdown: CancellationToken,
    drain: Duration,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    // HTTP/1.1 only: browsers speak HTTP/2 only over TLS, which a reverse proxy in front of
    // Baton ends, and the protocol sniffing that cleartext HTTP/2 needs has no deadline of its
    // own. hyper's header-read deadline starts with the first byte, so a socket that sends
    // nothing at all is given the same deadline for that first byte below.
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let builder = Arc::new(builder);
    loop {
        // A free slot first: past the cap, new connections wait in the backlog.
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors, say: wait a moment rather than spin.
                    tracing::warn!(error = %err, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let first_byte = limits.header_read_timeout;
        let service = TowerToHyperService::new(tower::service_fn({
            let router = router.clone();
            move |mut request: axum::extract::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                let mut router = router.clone();
                async move {
                    use tower::Service;
                    let response = router
                        .call(request.map(axum::body::Body::new))
                        .await
                        .unwrap_or_else(|never: Infallible| match never {});
                    Ok::<_, Infallible>(response)
                }
            }
        }));
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            // A client that connects and says nothing is closed when its deadline passes.
            let mut byte = [0u8; 1];
            match tokio::time::timeout(first_byte, stream.peek(&mut byte)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return drop(permit),
            }
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            let _ = watcher.watch(connection).await;
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            ?drain,
            "requests still open after the shutdown timeout; dropping them"
        );
    }
}

/// The client's address, as the listener saw it.
pub fn peer(request: &axum::http::request::Parts) -> Option<SocketAddr> {
    request
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr)
}

/// The client's address, from a whole request.
pub fn peer_of<B>(request: &axum::http::Request<B>) -> Option<SocketAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr)
}

//! The accept loop every listening adapter shares (the HTTP API, the MCP gateway), on
//! hyper directly rather than `axum::serve` because it bounds what a slow or idle client
//! can hold: the header read timeout and the connection limit. Handlers that read a body
//! bound that themselves.
//!
//! With [`TlsListener`] the loop speaks TLS: the handshake must complete within the
//! header read timeout (it runs in the connection's task, so a slow handshake never
//! holds up accepting), and the client's certificate is verified when the connection
//! opens and handed to every request as a [`PeerSvid`] extension (which verifies it
//! again after a bundle reload).

use super::tls::{PeerSvid, TlsListener};
use axum::Router;
use axum::extract::ConnectInfo;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// What one listener allows a client to hold.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Time for a request's headers to arrive; also how long an idle keep-alive
    /// connection is kept.
    pub header_read_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

/// Serves `app` on `listener` until `shutdown` completes; then calls `on_drain`, stops
/// accepting and waits for in-flight requests to finish.
///
/// Each connection is HTTP/1.1 with keep-alive, served by hyper with
/// [`ConnectionLimits::header_read_timeout`]: a client that opens a connection and sends
/// its headers slowly (or nothing at all, or nothing more after a response) is cut off
/// then. At most [`ConnectionLimits::max_connections`] are served at once; at the limit
/// the loop stops accepting until one closes, so new clients wait in the kernel's listen
/// queue (and their connect may time out) rather than being refused: a burst slows down
/// instead of failing, and held slots are freed by the timeouts. Handlers see the peer
/// address as `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: ConnectionLimits,
    tls: Option<TlsListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_drain: impl FnOnce(),
) -> std::io::Result<()> {
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let connections = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // Take a slot before accepting, so that past the limit nothing more is accepted.
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => slot,
            () = &mut shutdown => break,
        };
        // The semaphore is never closed; if it were, stop serving rather than go unbounded.
        let Ok(slot) = slot else { break };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // The peer gave up before we accepted: nothing to serve, nothing wrong.
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Out of file descriptors, most often: wait for connections to close
                    // instead of spinning or stopping the server.
                    tracing::error!(error = %e, "cannot accept a connection; retrying in 1 s");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        () = &mut shutdown => break,
                    }
                }
            },
            () = &mut shutdown => break,
        };
        // Answers are small and latency matters more than packet count.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let router = app.clone();
        let http = http.clone();
        let watcher = connections.watcher();
        let tls = tls.clone();
        let timeout = limits.header_read_timeout;
        tokio::spawn(async move {
            match tls {
                None => {
                    serve_connection(&http, watcher, stream, router, peer, None).await;
                }
                Some(tls) => {
                    let stream =
                        match tokio::time::timeout(timeout, tls.acceptor.accept(stream)).await {
                            Ok(Ok(stream)) => stream,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        };
                    let svid = tls.peer_svid(stream.get_ref().1.peer_certificates());
                    serve_connection(&http, watcher, stream, router, peer, svid).await;
                }
            }
            drop(slot);
        });
    }
    on_drain();
    drop(listener);
    tracing::info!("shutting down: no new connections, finishing in-flight requests");
    connections.shutdown().await;
    Ok(())
}

/// Serves one connection until it closes; every request carries the peer address and,
/// over TLS, the connection's [`PeerSvid`].
async fn serve_connection<S>(
    http: &hyper::server::conn::http1::Builder,
    watcher: hyper_util::server::graceful::Watcher,
    stream: S,
    router: Router,
    peer: SocketAddr,
    svid: Option<PeerSvid>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: hyper::Request<_>| {
        // What `into_make_service_with_connect_info` would add: auth logs the peer.
        request.extensions_mut().insert(ConnectInfo(peer));
        if let Some(svid) = &svid {
            request.extensions_mut().insert(svid.clone());
        }
        // `Router` is always ready (its `poll_ready` returns `Ready`), so calling it
        // directly keeps the tower contract.
        let mut router = router.clone();
        tower_service::Service::call(&mut router, request)
    });
    let connection =
        watcher.watch(http.serve_connection(hyper_util::rt::TokioIo::new(stream), service));
    if let Err(e) = connection.await {
        // Header timeouts and clients that hang up land here: routine, so debug.
        tracing::debug!(%peer, error = %e, "connection closed with an error");
    }
}

/// Accept errors that concern one connection only (the one the peer abandoned).
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

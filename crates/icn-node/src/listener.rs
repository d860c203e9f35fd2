//! The gateway's TCP listener, with limits an abusive client cannot get
//! around by opening connections and sending nothing: at most
//! [`Limits::per_address`] open connections from one address and
//! [`Limits::total`] in all (more are closed as soon as they are accepted,
//! so the process never runs out of file descriptors and the admin socket
//! keeps working), and a connection on which nothing was read or written
//! for [`Limits::idle`] is closed. Event streams stay open: the server
//! writes to them at least every 30 s.

use std::{
    collections::HashMap,
    io,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use axum::extract::connect_info::Connected;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    time::{Instant, Sleep},
};

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub per_address: usize,
    pub total: usize,
    pub idle: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            per_address: 64,
            total: 512,
            idle: Duration::from_secs(120),
        }
    }
}

/// Open connections by client address.
#[derive(Default)]
struct Open {
    by_address: HashMap<IpAddr, usize>,
    total: usize,
}

pub struct CappedListener {
    inner: TcpListener,
    limits: Limits,
    open: Arc<Mutex<Open>>,
}

impl CappedListener {
    pub fn new(inner: TcpListener, limits: Limits) -> CappedListener {
        CappedListener {
            inner,
            limits,
            open: Arc::default(),
        }
    }

    /// Takes a slot for a connection from `address`, if one is free.
    fn admit(&self, address: IpAddr) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let from_address = open.by_address.get(&address).copied().unwrap_or(0);
        if open.total >= self.limits.total || from_address >= self.limits.per_address {
            return None;
        }
        open.total += 1;
        *open.by_address.entry(address).or_default() += 1;
        Some(Slot {
            address,
            open: self.open.clone(),
        })
    }
}

/// A connection's place in the counts, given back when it closes.
struct Slot {
    address: IpAddr,
    open: Arc<Mutex<Open>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.by_address.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                open.by_address.remove(&self.address);
            }
        }
    }
}

/// The client's address, as handlers read it (`ConnectInfo<ClientAddr>`).
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub SocketAddr);

impl Connected<axum::serve::IncomingStream<'_, CappedListener>> for ClientAddr {
    fn connect_info(stream: axum::serve::IncomingStream<'_, CappedListener>) -> ClientAddr {
        ClientAddr(*stream.remote_addr())
    }
}

impl axum::serve::Listener for CappedListener {
    type Io = CappedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (CappedStream, SocketAddr) {
        loop {
            let (stream, address) = match self.inner.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors or a connection reset before it was
                    // taken: wait a moment rather than spin.
                    tracing::debug!(%error, "Could not accept a gateway connection.");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            match self.admit(address.ip()) {
                Some(slot) => {
                    let _ = stream.set_nodelay(true);
                    let idle = self.limits.idle;
                    return (
                        CappedStream {
                            inner: stream,
                            _slot: slot,
                            idle,
                            deadline: Box::pin(tokio::time::sleep(idle)),
                        },
                        address,
                    );
                }
                None => {
                    tracing::debug!(%address, "Too many gateway connections: closed one.");
                    drop(stream);
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// A gateway connection that gives its slot back when closed and ends
/// itself after [`Limits::idle`] without progress either way.
pub struct CappedStream {
    inner: TcpStream,
    _slot: Slot,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl CappedStream {
    fn progressed(&mut self) {
        let next = Instant::now() + self.idle;
        self.deadline.as_mut().reset(next);
    }

    fn timed_out(&mut self, cx: &mut Context<'_>) -> bool {
        self.deadline.as_mut().poll(cx).is_ready()
    }
}

impl AsyncRead for CappedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    self.progressed();
                }
                Poll::Ready(result)
            }
            Poll::Pending if self.timed_out(cx) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "idle gateway connection",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for CappedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            self.progressed();
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connections_over_the_caps_are_closed_and_slots_come_back() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let limits = Limits {
            per_address: 2,
            total: 3,
            idle: Duration::from_secs(60),
        };
        let capped = CappedListener::new(listener, limits);
        let loopback: IpAddr = [127, 0, 0, 1].into();
        let other: IpAddr = [127, 0, 0, 2].into();
        let first = capped.admit(loopback).unwrap();
        let _second = capped.admit(loopback).unwrap();
        assert!(capped.admit(loopback).is_none(), "per address");
        let _third = capped.admit(other).unwrap();
        assert!(capped.admit([127, 0, 0, 3].into()).is_none(), "in total");
        drop(first);
        assert!(
            capped.admit(loopback).is_some(),
            "a closed connection frees its slot"
        );
    }
}

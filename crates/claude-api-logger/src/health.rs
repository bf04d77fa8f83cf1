//! The image's HEALTHCHECK: a TCP connect to the proxy's port. Distroless images have no curl,
//! and an HTTP request through the proxy would be forwarded to the Anthropic API.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs as _};
use std::time::Duration;

use anyhow::Context as _;

use crate::config::HealthArgs;

pub fn check(args: &HealthArgs) -> anyhow::Result<()> {
    let addr = probe_addr(&args.listen)?;
    TcpStream::connect_timeout(&addr, Duration::from_millis(args.timeout_ms))
        .with_context(|| format!("proxy not accepting connections on {addr}"))?;
    Ok(())
}

/// The address to probe for a listen address: wildcard hosts become loopback.
pub fn probe_addr(listen: &str) -> anyhow::Result<SocketAddr> {
    let mut addr = listen
        .to_socket_addrs()
        .with_context(|| format!("PROXY_LISTEN {listen:?} is not an address like 0.0.0.0:8000"))?
        .next()
        .with_context(|| format!("PROXY_LISTEN {listen:?} resolves to nothing"))?;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_listen_is_probed_on_loopback() {
        assert_eq!(
            probe_addr("0.0.0.0:8000").unwrap(),
            "127.0.0.1:8000".parse().unwrap()
        );
        assert_eq!(probe_addr("[::]:9").unwrap(), "[::1]:9".parse().unwrap());
    }

    #[test]
    fn reports_a_closed_port() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let args = HealthArgs {
            listen: addr.to_string(),
            timeout_ms: 1000,
        };
        check(&args).expect("open port is healthy");
        drop(listener);
        assert!(check(&args).is_err());
    }
}

//! TXT lookups for domain verification: the system's resolver in AWS, or
//! the one `DNS_RESOLVER` names (`host:port`, how tests reach a local DNS
//! server).

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::{Resolver, TokioResolver};
use shared::Error;

const TIMEOUT: Duration = Duration::from_secs(2);

fn resolver(server: Option<SocketAddr>) -> Result<TokioResolver, Error> {
    let unavailable = |e: &dyn std::fmt::Display| Error::Storage(format!("DNS resolver: {e}"));
    let mut builder = match server {
        Some(addr) => {
            let connection = |mut c: ConnectionConfig| {
                c.port = addr.port();
                c
            };
            let server = NameServerConfig::new(
                addr.ip(),
                true,
                vec![
                    connection(ConnectionConfig::udp()),
                    connection(ConnectionConfig::tcp()),
                ],
            );
            Resolver::builder_with_config(
                ResolverConfig::from_parts(None, Vec::new(), vec![server]),
                TokioRuntimeProvider::default(),
            )
        }
        None => TokioResolver::builder_tokio().map_err(|e| unavailable(&e))?,
    };
    let options = builder.options_mut();
    options.timeout = TIMEOUT;
    options.attempts = 2;
    // A verification must see the record as it is now.
    options.cache_size = 0;
    builder.build().map_err(|e| unavailable(&e))
}

/// The TXT strings at `name` (each record's chunks joined); empty when the
/// name has none or does not exist. 503 when no answer came.
pub async fn txt_records(server: Option<SocketAddr>, name: &str) -> Result<Vec<String>, Error> {
    let resolver = resolver(server)?;
    // Fully qualified: no search domains appended.
    let lookup = match resolver.txt_lookup(format!("{name}.")).await {
        Ok(lookup) => lookup,
        Err(e) if e.is_no_records_found() => return Ok(Vec::new()),
        Err(e) => {
            return Err(Error::Storage(format!(
                "the DNS lookup of {name} failed: {e}"
            )))
        }
    };
    Ok(lookup
        .answers()
        .iter()
        .filter_map(|record| match &record.data {
            RData::TXT(txt) => Some(
                txt.txt_data
                    .iter()
                    .map(|chunk| String::from_utf8_lossy(chunk))
                    .collect::<String>(),
            ),
            _ => None,
        })
        .collect())
}

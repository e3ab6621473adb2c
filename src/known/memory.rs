//! The known-servers store in memory, [`MemoryKnownServers`]: the same trust rules as the
//! file store ([`decide`] is shared), without a file.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use crate::error::Result;

use super::{decide, new_server, CertFacts, HostKey, KnownServer, KnownServersStore, TrustStatus};

/// A known-servers store that lives only as long as the program: for tests, and for
/// applications that keep their trust decisions elsewhere and fill it at start.
#[derive(Debug, Default)]
pub struct MemoryKnownServers {
    servers: RwLock<HashMap<HostKey, KnownServer>>,
}

impl MemoryKnownServers {
    /// An empty store.
    pub fn new() -> MemoryKnownServers {
        MemoryKnownServers::default()
    }
}

impl KnownServersStore for MemoryKnownServers {
    fn lookup(&self, host: &str, port: Option<u16>, cert_der: &[u8]) -> Result<TrustStatus> {
        let key = HostKey::new(host, port)?;
        let presented = CertFacts::of_argument(cert_der, host)?;
        let servers = self.servers.read().unwrap_or_else(PoisonError::into_inner);
        let for_port = if key.port == 0 {
            None
        } else {
            servers.get(&key)
        };
        let any_port = servers.get(&key.any_port());
        Ok(decide([for_port, any_port], false, &presented))
    }

    fn add(&self, host: &str, port: Option<u16>, cert_der: &[u8]) -> Result<()> {
        let key = HostKey::new(host, port)?;
        let facts = CertFacts::of_argument(cert_der, host)?;
        let server = new_server(key.clone(), cert_der, facts);
        self.servers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, server);
        Ok(())
    }

    fn remove(&self, host: &str, port: Option<u16>) -> Result<bool> {
        let key = HostKey::new(host, port)?;
        let mut servers = self.servers.write().unwrap_or_else(PoisonError::into_inner);
        Ok(servers.remove(&key).is_some())
    }

    /// Sorted by host, then port (any port first).
    fn entries(&self) -> Result<Vec<KnownServer>> {
        let servers = self.servers.read().unwrap_or_else(PoisonError::into_inner);
        let mut entries: Vec<KnownServer> = servers.values().cloned().collect();
        entries.sort_by(|a, b| (a.host(), a.port()).cmp(&(b.host(), b.port())));
        Ok(entries)
    }
}

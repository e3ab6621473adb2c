//! A libvirt client over tokio: connects to a libvirt daemon's TLS port, verifies it with the
//! library (libvirt's rules, the system's credential paths), waits for the daemon's 0x01
//! confirmation byte, and reports who the server is.
//!
//! ```text
//! cargo run --features tokio --example tokio_client -- HOST [PORT [PKIPATH]]
//! ```
//!
//! The credentials are the user's or the system's, as libvirt finds them
//! (`~/.pki/libvirt`, `/etc/pki/...`), or those of a pkipath directory (a URI's `?pkipath=`).
//! An IPv6 address may be given in brackets (`[::1]`). `make interop` runs it against libvirtd.

use std::sync::Arc;

use tokio::net::TcpStream;
use virtpki::role::Role;
use virtpki::session::SessionFlags;
use virtpki::{Context, ContextFlags};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(host) = args.next() else {
        eprintln!("usage: tokio_client HOST [PORT [PKIPATH]]");
        std::process::exit(2);
    };
    let port: u16 = match args.next().map(|p| p.parse()) {
        None => 16514,
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            eprintln!("tokio_client: bad port: {e}");
            std::process::exit(2);
        }
    };
    let pkipath = args.next().map(std::path::PathBuf::from);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    if let Err(e) = runtime.block_on(run(&host, port, pkipath.as_deref())) {
        eprintln!("tokio_client: {e}");
        std::process::exit(1);
    }
}

async fn run(
    host: &str,
    port: u16,
    pkipath: Option<&std::path::Path>,
) -> Result<(), Box<dyn std::error::Error>> {
    let ctx = Arc::new(Context::new(ContextFlags::default()));
    ctx.load_default(Role::Client, pkipath)?;
    // The socket takes the address without brackets; the verifier takes the name as given.
    let tcp = TcpStream::connect((virtpki::names::strip_brackets(host), port)).await?;
    let stream =
        virtpki::tokio::connect(&ctx, tcp, host, Some(port), SessionFlags::LIBVIRT_CONFIRM).await?;
    let server = stream
        .peer_certificates()
        .first()
        .map(|c| c.subject().to_owned())
        .unwrap_or_default();
    println!(
        "connected to {host}:{port} ({}), server {server}: confirmed",
        stream.protocol_version().unwrap_or_default()
    );
    Ok(())
}

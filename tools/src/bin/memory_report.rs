//! Peak memory of a context holding 10,000 known servers and a 100,000-serial CRL (a
//! performance target of the design, reported rather than timed).
//!
//! Run with `cargo run --release -p virtpki-tools --bin memory_report`. The fixtures (root CA, CRL,
//! known-servers file) are made first in a temporary directory; then the program runs itself
//! again to load them, so that the peak resident size it reports (`VmHWM` of
//! `/proc/self/status`) does not include making them. At each step it prints the resident size
//! (`VmRSS`), its peak so far (`VmHWM`), and the heap bytes the library holds and at most held
//! during the step, counted by a wrapper around the system allocator.
//!
//! Then, for ECDSA P-256 and RSA-2048 identities, the heap an idle established session holds
//! as C callers have it: [`SESSIONS`] client and server sessions made with
//! `virPKISessionNewClient`/`NewServer` over socketpairs (mutual TLS, the 0x01 byte), all kept
//! open and idle, and the heap held divided by their number.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use virtpki::{Acceptance, CertDataType, Context, ContextFlags, VerifyFlags};

use virtpki_tools::bench as fixtures;

const CRL_SERIALS: u32 = 100_000;
const KNOWN_SERVERS: usize = 10_000;
/// Session pairs held at once for the per-session figure.
const SESSIONS: usize = 100;

/// The system allocator, counting the bytes allocated and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let live = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to `System` with the caller's arguments; the counters have
// no effect on the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's guarantees are System's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, dir] = args.as_slice() {
        if flag == "--load" {
            return load(Path::new(dir));
        }
    }
    let dir = tempfile::tempdir()?;
    println!("Making the fixtures in {} ...", dir.path().display());
    let pki = fixtures::Pki::new(fixtures::Alg::EcdsaP256);
    std::fs::write(dir.path().join("cacert.pem"), pki.root.pem())?;
    std::fs::write(
        dir.path().join("cacrl.pem"),
        fixtures::crl_pem(&pki.root, CRL_SERIALS),
    )?;
    std::fs::write(dir.path().join("servercert.pem"), pki.leaf.pem())?;
    std::fs::write(dir.path().join("intermediate.pem"), pki.intermediate.pem())?;
    let certs = fixtures::store_certs(16);
    fixtures::write_store(dir.path(), "known.pem", &certs, KNOWN_SERVERS);
    for file in ["cacrl.pem", "known.pem"] {
        let size = std::fs::metadata(dir.path().join(file))?.len();
        println!("  {file}: {:.1} MiB", mib(size as usize));
    }
    // A fresh process, whose peak resident size owes nothing to making the fixtures.
    let status = Command::new(std::env::current_exe()?)
        .arg("--load")
        .arg(dir.path())
        .status()?;
    if !status.success() {
        return Err(format!("the measuring process failed: {status}").into());
    }
    Ok(())
}

fn load(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    println!(
        "\n{:<46} {:>10} {:>10} {:>12} {:>12}",
        "step", "VmRSS", "VmHWM", "heap held", "heap peak"
    );
    report("start");

    let ctx = Context::new(ContextFlags::default());
    ctx.set_verify_time(Some(fixtures::now()));
    ctx.add_file(CertDataType::CaCert, &dir.join("cacert.pem"))?;
    report("root CA loaded");

    ctx.add_file(CertDataType::CaCrl, &dir.join("cacrl.pem"))?;
    let crls = ctx.credentials().crls.clone();
    assert_eq!(crls[0].revoked_count(), CRL_SERIALS as usize);
    report(&format!("+ CRL of {CRL_SERIALS} serials"));

    ctx.set_known_servers_file(&dir.join("known.pem"))?;
    let entries = ctx.known_servers().ok_or("no store")?.entries()?.len();
    assert_eq!(entries, KNOWN_SERVERS);
    report(&format!("+ known-servers store of {entries} entries"));

    let read = |name: &str| -> Result<virtpki::Certificate, Box<dyn std::error::Error>> {
        let der = ::pem::parse(std::fs::read(dir.join(name))?)?.into_contents();
        Ok(virtpki::Certificate::from_der(der, virtpki::Source::Peer)?)
    };
    let chain = [read("servercert.pem")?, read("intermediate.pem")?];
    let verdict = ctx.verify_server(fixtures::HOST, Some(16514), &chain, VerifyFlags::default())?;
    assert_eq!(verdict.acceptance, Acceptance::Verified);
    report("+ one server verification");

    let status = std::fs::read_to_string("/proc/self/status")?;
    println!(
        "\nPeak resident size of the process: {} (from {} at start).",
        field(&status, "VmHWM").unwrap_or_default(),
        START_HWM.get().map_or("?", String::as_str)
    );
    drop((ctx, crls, chain));

    println!("\nHeap held by an idle established session (C API, mutual TLS, the 0x01 byte):");
    for alg in [fixtures::Alg::EcdsaP256, fixtures::Alg::Rsa2048] {
        idle_sessions(dir, alg)?;
    }
    Ok(())
}

/// Makes [`SESSIONS`] session pairs through the C API and reports the heap they hold idle.
fn idle_sessions(dir: &Path, alg: fixtures::Alg) -> Result<(), Box<dyn std::error::Error>> {
    use std::ffi::CString;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;
    use virtpki::ffi::context::{
        virPKIContextAddCertDataFile, virPKIContextFree, virPKIContextNew,
        virPKIContextSetVerifyTime,
    };
    use virtpki::ffi::errors::virPKIGetLastErrorMessage;
    use virtpki::ffi::session::{
        virPKISessionFree, virPKISessionNewClient, virPKISessionNewServer, virPKISessionPtr,
    };
    use virtpki::CertDataType as T;

    let pki = fixtures::Pki::new(alg);
    let files = [
        ("ca.pem", pki.root.pem()),
        ("server.pem", pki.leaf.pem() + &pki.intermediate.pem()),
        ("server-key.pem", pki.leaf.key_pem()),
        ("client.pem", pki.client.pem() + &pki.intermediate.pem()),
        ("client-key.pem", pki.client.key_pem()),
    ];
    for (name, text) in &files {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(dir.join(name), text)?;
        // Keys readable by others are refused.
        std::fs::set_permissions(dir.join(name), std::fs::Permissions::from_mode(0o600))?;
    }
    let last_error = || {
        // SAFETY: the message is a thread-local C string valid until the next call.
        unsafe { std::ffi::CStr::from_ptr(virPKIGetLastErrorMessage()) }
            .to_string_lossy()
            .into_owned()
    };
    let context = |files: &[(T, &str)]| -> Result<_, Box<dyn std::error::Error>> {
        let ctx = virPKIContextNew(0);
        // SAFETY: ctx is checked first.
        if ctx.is_null() || unsafe { virPKIContextSetVerifyTime(ctx, fixtures::now()) } != 0 {
            return Err(last_error().into());
        }
        for (kind, name) in files {
            let path = CString::new(dir.join(name).to_str().ok_or("path")?)?;
            // SAFETY: ctx is live, path a C string.
            if unsafe { virPKIContextAddCertDataFile(ctx, *kind as i32, path.as_ptr()) } != 0 {
                return Err(last_error().into());
            }
        }
        Ok(ctx)
    };
    let server = context(&[
        (T::CaCert, "ca.pem"),
        (T::ServerCert, "server.pem"),
        (T::ServerKey, "server-key.pem"),
    ])?;
    let client = context(&[
        (T::CaCert, "ca.pem"),
        (T::ClientCert, "client.pem"),
        (T::ClientKey, "client-key.pem"),
    ])?;
    let host = CString::new(fixtures::HOST)?;
    // Raw pointers are not Send: the server's crosses the thread as an address.
    let (server_addr, client_addr) = (server as usize, client as usize);
    let one_pair = || -> Result<_, Box<dyn std::error::Error>> {
        let (a, b) = UnixStream::pair()?;
        let fd = a.as_raw_fd();
        let accept = std::thread::spawn(move || {
            // SAFETY: the context outlives the thread (joined below); fd is open.
            unsafe { virPKISessionNewServer(server_addr as _, fd, 1) as usize }
        });
        // SAFETY: as above.
        let c = unsafe {
            virPKISessionNewClient(client_addr as _, b.as_raw_fd(), host.as_ptr(), 16514, 1)
        };
        let s = accept.join().map_err(|_| "the server thread panicked")? as virPKISessionPtr;
        if c.is_null() || s.is_null() {
            return Err(format!("handshake: {}", last_error()).into());
        }
        Ok((c, s, a, b))
    };
    // One pair first, so that what is made once per process (thread-locals, the provider) is
    // not counted.
    let warm = one_pair()?;
    let mut held = Vec::with_capacity(SESSIONS);
    let before = LIVE.load(Ordering::Relaxed);
    for _ in 0..SESSIONS {
        held.push(one_pair()?);
    }
    let both = LIVE.load(Ordering::Relaxed) - before;
    for (_, s, _, _) in &held {
        // SAFETY: each server session is live and freed once.
        unsafe { virPKISessionFree(*s) };
    }
    let clients = LIVE.load(Ordering::Relaxed) - before;
    println!(
        "  {:<10} client {:>6.1} KiB, server {:>6.1} KiB per idle session ({SESSIONS} pairs held)",
        alg.name(),
        clients as f64 / SESSIONS as f64 / 1024.0,
        (both - clients) as f64 / SESSIONS as f64 / 1024.0
    );
    for (c, s, _, _) in held
        .into_iter()
        .map(|(c, _, a, b)| (c, std::ptr::null_mut(), a, b))
        .chain([warm])
    {
        // SAFETY: each session is live and freed once (the held servers were freed above).
        unsafe {
            virPKISessionFree(c);
            if !s.is_null() {
                virPKISessionFree(s);
            }
        }
    }
    // SAFETY: the contexts are live and every session made with them is freed.
    unsafe {
        virPKIContextFree(server);
        virPKIContextFree(client);
    }
    Ok(())
}

static START_HWM: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Prints the resident sizes and heap counters, and starts a new heap peak.
fn report(step: &str) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let rss = field(&status, "VmRSS").unwrap_or_else(|| "?".into());
    let hwm = field(&status, "VmHWM").unwrap_or_else(|| "?".into());
    START_HWM.get_or_init(|| hwm.clone());
    let live = LIVE.load(Ordering::Relaxed);
    let peak = PEAK.swap(live, Ordering::Relaxed);
    println!(
        "{step:<46} {rss:>10} {hwm:>10} {:>8.1} MiB {:>8.1} MiB",
        mib(live),
        mib(peak)
    );
}

/// `VmHWM:   12345 kB` → `12.1 MiB`.
fn field(status: &str, name: &str) -> Option<String> {
    let line = status.lines().find(|l| l.starts_with(name))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(format!("{:.1} MiB", mib(kib * 1024)))
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

//! Files the library reads: anything but a regular file is refused at once (a FIFO must not
//! hang the caller), and the known-servers file has a size cap.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use virtpki::daemon_conf::DaemonConf;
use virtpki::known::MAX_STORE_SIZE;
use virtpki::{pem, CertDataType, Context, ContextFlags, ErrorKind, KnownServers};

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
}

/// Runs `f` on another thread and fails the test if it has not returned within 10 seconds
/// (a reader blocked on a FIFO with no writer never returns).
fn within_seconds<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("{what} hangs on a FIFO"))
}

#[test]
fn fifos_are_refused_without_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("cacert.pem");
    mkfifo(&fifo);
    let f = fifo.clone();
    let e = within_seconds("pem::read_file", move || {
        pem::read_file(&f, CertDataType::CaCert).unwrap_err()
    });
    assert_eq!(e.kind(), ErrorKind::Io, "{e}");
    assert!(
        e.message().contains("cacert.pem") && e.message().contains("FIFO"),
        "{e}"
    );

    let f = fifo.clone();
    let e = within_seconds("Context::add_file", move || {
        Context::new(ContextFlags::default())
            .add_file(CertDataType::CaCert, &f)
            .unwrap_err()
    });
    assert_eq!(e.kind(), ErrorKind::Io, "{e}");
    assert!(e.message().contains("not a regular file"), "{e}");

    let conf = dir.path().join("libvirtd.conf");
    mkfifo(&conf);
    let e = within_seconds("DaemonConf::read_file", move || {
        DaemonConf::read_file(&conf).unwrap_err()
    });
    assert_eq!(e.kind(), ErrorKind::Io, "{e}");
    assert!(
        e.message().contains("libvirtd.conf") && e.message().contains("FIFO"),
        "{e}"
    );
}

#[test]
fn a_known_servers_file_over_the_cap_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("known");
    // Sparse: the size is refused from fstat, before a byte is read.
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(MAX_STORE_SIZE + 1).unwrap();
    drop(file);
    let e = KnownServers::open(&path).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Store, "{e}");
    let cap = format!("{} MiB", MAX_STORE_SIZE / (1024 * 1024));
    assert!(
        e.message().contains(&path.display().to_string()) && e.message().contains(&cap),
        "{e}"
    );
    // Under the cap it is read (a kilobyte of NUL bytes: damaged lines, not an error).
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(1024)
        .unwrap();
    KnownServers::open(&path).unwrap();
}

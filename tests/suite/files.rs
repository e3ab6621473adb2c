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

/// Makes `kind` at `path` without opening anything: a socket (its listener returned, to be
/// kept), a FIFO, a directory, or a device (a link to /dev/null: a device node needs root).
fn make(path: &Path, kind: &str) -> Option<std::os::unix::net::UnixListener> {
    match kind {
        "a socket" => return Some(std::os::unix::net::UnixListener::bind(path).unwrap()),
        "a named pipe (FIFO)" => mkfifo(path),
        "a directory" => std::fs::create_dir(path).unwrap(),
        "a device" => std::os::unix::fs::symlink("/dev/null", path).unwrap(),
        _ => unreachable!(),
    }
    None
}

/// Every reader of a credential or configuration file goes through one open
/// (`fsutil::open_regular`): a socket (which open(2) refuses with ENXIO, "No such device or
/// address"), a FIFO, a device or a directory is said to be that, naming the file, at once;
/// the access audit says so too instead of judging its mode.
#[test]
fn whatever_is_not_a_regular_file_is_named_for_what_it_is() {
    use virtpki::file_audit::{self, FileKind, FileSet};
    use virtpki::fsutil::{self, Dir, Follow};
    let dir = tempfile::tempdir().unwrap();
    for (i, kind) in ["a socket", "a named pipe (FIFO)", "a directory", "a device"]
        .into_iter()
        .enumerate()
    {
        let sub = dir.path().join(i.to_string());
        std::fs::create_dir(&sub).unwrap();
        let path = sub.join("cacrl.pem");
        let _listener = make(&path, kind);
        let said = format!("it is {kind}, not a regular file");
        let p = path.clone();
        let e = within_seconds("pem::read_crls", move || pem::read_crls(&p).unwrap_err());
        assert_eq!(e.kind(), ErrorKind::Io, "{e}");
        assert!(
            e.message().contains(&path.display().to_string()) && e.message().contains(&said),
            "{kind}: {e}"
        );
        let p = path.clone();
        let e = within_seconds("Context::add_file", move || {
            Context::new(ContextFlags::default())
                .add_file(CertDataType::CaCrl, &p)
                .unwrap_err()
        });
        assert!(e.message().contains(&said), "{kind}: {e}");
        let p = path.clone();
        let e = within_seconds("DaemonConf::read_file", move || {
            DaemonConf::read_file(&p).unwrap_err()
        });
        assert!(e.message().contains(&said), "{kind}: {e}");
        // Through an open directory, as install reads its sources.
        let d = Dir::open(&sub).unwrap();
        let e = within_seconds("Dir::read", move || {
            format!("{:?}", d.read("cacrl.pem".as_ref(), 1000).unwrap_err())
        });
        // A link is never followed there: the device's link is refused as a link.
        let wanted = if kind == "a device" {
            "symbolic link"
        } else {
            kind
        };
        assert!(e.contains(wanted), "{kind}: {e}");
        let p = path.clone();
        let e = within_seconds("read_regular", move || {
            format!(
                "{:?}",
                fsutil::read_regular(&p, Follow::Yes, 1000).unwrap_err()
            )
        });
        assert!(e.contains(&said), "{kind}: {e}");
        // The audit: an error naming what it is, not a mode to change.
        // SAFETY: no preconditions.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let set = FileSet::User { uid, gid };
        let (_, finding) = file_audit::audit_path(&path, FileKind::Public, set).unwrap();
        let finding = finding.unwrap_or_else(|| panic!("{kind}: no finding"));
        assert_eq!(finding.severity, virtpki::Severity::Error, "{kind}");
        assert!(
            finding
                .message
                .contains(&format!("{} is {kind}, not a regular file", path.display())),
            "{kind}: {}",
            finding.message
        );
        assert!(finding.fix.starts_with("remove "), "{}", finding.fix);
    }
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

/// Review of item 16: a [`Dir`] acts on its descriptor, listing included. The directory
/// moved away after it was opened and another put at its path: what is listed (the backups
/// `install` counts for the person reading its output) is the opened directory's.
#[test]
fn an_open_directory_is_listed_through_its_descriptor() {
    use std::ffi::OsString;
    use virtpki::fsutil::Dir;
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir(&a).unwrap();
    std::fs::write(a.join("k.bak-1"), "").unwrap();
    std::fs::write(a.join("other"), "").unwrap();
    let opened = Dir::open(&a).unwrap();
    std::fs::rename(&a, &b).unwrap();
    std::fs::create_dir(&a).unwrap();
    for n in 1..=3 {
        std::fs::write(a.join(format!("k.bak-{n}")), "").unwrap();
    }
    assert_eq!(
        opened.names_starting_with("k.bak-").unwrap(),
        [OsString::from("k.bak-1")]
    );
    // Listed twice, the same (a new read position each time), without `.` and `..`.
    for _ in 0..2 {
        assert_eq!(
            opened.names_starting_with("").unwrap(),
            [OsString::from("k.bak-1"), OsString::from("other")]
        );
    }
}

/// Review of item 16 (`install --user` as root): between `mkdirat` and opening the new
/// directory to give it to the user, someone who can write the parent can rename another
/// directory over the new, empty one. That directory, with what is in it, must not be given
/// away. A thread keeps trying while root makes and removes the directory; needs root.
#[test]
fn a_directory_swapped_in_after_mkdir_is_not_given_away() {
    use std::os::unix::fs::MetadataExt;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use virtpki::fsutil::{make_dirs, Owner};
    // SAFETY: geteuid takes nothing and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: fchown to another user cannot be tried");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let parent = dir.path().to_owned();
    let (theirs, target) = (parent.join("theirs"), parent.join("new"));
    std::fs::create_dir(&theirs).unwrap();
    std::fs::write(theirs.join("root's file"), "").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (stop, theirs, target) = (stop.clone(), theirs.clone(), target.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                // Over the new empty directory, then back.
                if std::fs::rename(&theirs, &target).is_ok() {
                    while std::fs::rename(&target, &theirs).is_err() {}
                }
            }
        })
    };
    let user = Owner {
        uid: 65534,
        gid: 65534,
    };
    let mut refused = 0;
    for _ in 0..20000 {
        if make_dirs(&parent, std::path::Path::new("new"), 0o700, Some(user)).is_err() {
            refused += 1;
        }
        // The new directory (empty) goes; theirs (not empty) cannot.
        let _ = std::fs::remove_dir(&target);
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    let _ = std::fs::remove_dir(&target);
    eprintln!("{refused} of 20000 runs refused");
    let meta = std::fs::metadata(&theirs).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid()),
        (0, 0),
        "the swapped-in directory was given away ({refused} runs refused)"
    );
}

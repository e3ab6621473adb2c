//! `validate --qemu`: QEMU's directories as libvirt gives them to QEMU (qemu.conf, read by
//! [`virtpki::daemon_conf::qemu`]), each checked with QEMU's own load-time rules
//! ([`virtpki::sanity::check_qemu`]), the access of QEMU's user
//! ([`virtpki::file_audit::audit_qemu`], the rule `install --qemu` writes by), the `*_verify`
//! settings, expiry and the names the server certificate must carry. The files are loaded
//! through [`locations::qemu_dir`] and a context, identity by identity.
//!
//! Which directories: those of the subsystems qemu.conf switches on (`vnc_tls`, `spice_tls`,
//! `chardev_tls`, `nbd_tls`, `vxhs_tls`), and those of migration and backup (TLS asked for per
//! migration or job) when their directory is set, `/etc/pki/libvirt-<sub>` exists, or
//! (migration) `migrate_tls_force = 1` or the default directory holds a client certificate.

use std::path::{Path, PathBuf};

use virtpki::daemon_conf::qemu::{self, DirOrigin, Enabled, QemuConf, QemuRole, Subsystem};
use virtpki::display::shell_path;
use virtpki::file_audit::{self, FileKind, QemuIds};
use virtpki::fsutil;
use virtpki::locations::{self, QemuIdentityNoteKind};
use virtpki::{sanity, CertDataType, Context, ContextFlags, Role};

use super::report::Check;
use super::{Scope, State, ValidateArgs, Validator};

const S: Scope = Scope::Qemu;

impl Validator {
    /// Every check of `validate --qemu`.
    pub(super) fn qemu_checks(&mut self, args: &ValidateArgs) {
        let conf_path = args.qemu_conf.clone().unwrap_or_else(|| {
            virtpki::daemon_conf::rerooted(&self.root, Path::new("/etc/libvirt/qemu.conf"))
        });
        let conf = match crate::install_qemu::read_conf(args.qemu_conf.as_deref(), &self.root) {
            Ok(c) => c,
            Err(e) => {
                return self.push_id(
                    S,
                    "conf.parse",
                    "Reading qemu.conf",
                    State::Fail,
                    Some(&conf_path),
                    e.message()
                        .trim_end_matches("; nothing was done")
                        .to_owned(),
                    Some("fix the line named; libvirt's QEMU driver does not start either".into()),
                )
            }
        };
        self.qemu_conf_checks(&conf, &conf_path, args.qemu_conf.is_some());
        let ids = match crate::install_qemu::qemu_ids(&conf, &self.root) {
            Ok(ids) => {
                self.pass_id(
                    S,
                    "conf.user",
                    "Checking QEMU's user and group",
                    None,
                    format!(
                        "QEMU runs as {} (uid {}, gid {})",
                        ids.label, ids.uid, ids.gid
                    ),
                );
                Some(ids)
            }
            Err(e) => {
                self.push_id(
                    S,
                    "conf.user",
                    "Checking QEMU's user and group",
                    State::Fail,
                    None,
                    e.message()
                        .trim_end_matches("; nothing was done")
                        .to_owned(),
                    e.fix().map(str::to_owned),
                );
                None
            }
        };
        let mut checked: Vec<(PathBuf, Role, Subsystem)> = Vec::new();
        let mut any = false;
        for sub in Subsystem::ALL.into_iter().skip(1) {
            let Some(why) = self.qemu_wanted(&conf, sub) else {
                continue;
            };
            any = true;
            self.qemu_subsystem(&conf, sub, &why, ids.as_ref(), args, &mut checked);
        }
        if !any {
            self.push_id(
                S,
                "subsystems",
                "Checking QEMU's TLS subsystems",
                State::Info,
                None,
                "qemu.conf switches TLS on for no subsystem (vnc_tls, spice_tls, chardev_tls, \
                 nbd_tls are 0) and no migration or backup directory is set",
                Some(
                    "set vnc_tls = 1 (or another) in qemu.conf, and install the files with \
                     virtpki install --qemu"
                        .into(),
                ),
            );
        }
    }

    /// qemu.conf itself: values libvirt refuses, directories it requires, misspelt names;
    /// who may change it, unless it was `given` (a draft, maybe, not the one libvirtd reads).
    fn qemu_conf_checks(&mut self, conf: &QemuConf, path: &Path, given: bool) {
        let shown = if path.exists() {
            format!("{} read", path.display())
        } else {
            format!("{} absent: libvirt's defaults apply", path.display())
        };
        self.pass_id(S, "conf.file", "Checking qemu.conf", Some(path), shown);
        if !given && path.exists() {
            self.conf_access(S, "conf.file_mode", "Checking qemu.conf access", path);
        }
        for e in conf.errors() {
            self.push_id(
                S,
                "conf.setting",
                format!("Checking {}", e.name),
                State::Fail,
                Some(path),
                format!("{} (libvirt's QEMU driver does not start)", e.message),
                Some(format!(
                    "give {} a value of the right type (0 or 1 for a switch, a \"quoted\" path \
                     or name otherwise)",
                    e.name
                )),
            );
        }
        for e in conf.missing_dirs(&self.root) {
            self.push_id(
                S,
                "conf.missing_dir",
                format!("Checking {}", e.name),
                State::Fail,
                Some(path),
                format!("{} (libvirt's QEMU driver does not start)", e.message),
                Some(format!(
                    "create it (virtpki install --qemu does) or remove the {} line",
                    e.name
                )),
            );
        }
        for e in conf.repeated() {
            self.push_id(
                S,
                "conf.repeated",
                format!("Checking {}", e.name),
                State::Warn,
                Some(path),
                e.message,
                Some(format!(
                    "keep one {} line (the one with the value you mean)",
                    e.name
                )),
            );
        }
        for e in conf.relative_dirs() {
            let absolute = match conf.conf().get(&e.name).map(|v| &v.value) {
                Some(virtpki::daemon_conf::Value::String(v)) => Path::new("/").join(v),
                _ => PathBuf::from("/"),
            };
            self.push_id(
                S,
                "conf.relative_dir",
                format!("Checking {}", e.name),
                State::Warn,
                Some(path),
                e.message,
                Some(format!(
                    "write it as an absolute path: {} = \"{}\"",
                    e.name,
                    absolute.display()
                )),
            );
        }
        for k in conf.unknown_keys() {
            let (message, fix) = match k.meant {
                Some(meant) => (
                    format!(
                        "{}: libvirt ignores `{}`; it is probably `{meant}`",
                        conf.location(k.line),
                        k.name
                    ),
                    format!("rename it to {meant}"),
                ),
                None => (
                    format!(
                        "{}: libvirt ignores `{}`: qemu.conf has no such setting",
                        conf.location(k.line),
                        k.name
                    ),
                    "remove the line".to_owned(),
                ),
            };
            self.push_id(
                S,
                "conf.unknown_setting",
                format!("Checking {}", k.name),
                State::Warn,
                Some(path),
                message,
                Some(fix),
            );
        }
    }

    /// Why `sub`'s directory is checked, or `None` (with a SKIP line for a switched-off one).
    fn qemu_wanted(&mut self, conf: &QemuConf, sub: Subsystem) -> Option<String> {
        match conf.enabled(sub) {
            Enabled::On(line) => Some(format!("{}_tls = 1 at {}", sub, conf.location(line))),
            Enabled::Off => {
                if sub != Subsystem::Vxhs {
                    self.push_id(
                        S,
                        &format!("{sub}.enabled"),
                        format!("Checking {sub} TLS"),
                        State::Skip,
                        None,
                        format!("{sub}_tls is not 1: QEMU's {sub} does not use TLS"),
                        Some(format!(
                            "set {sub}_tls = 1 in qemu.conf to use TLS for {sub}"
                        )),
                    );
                }
                None
            }
            Enabled::PerUse => conf.per_use_reason(sub, &self.root),
        }
    }

    /// One subsystem's directory.
    fn qemu_subsystem(
        &mut self,
        conf: &QemuConf,
        sub: Subsystem,
        why: &str,
        ids: Option<&QemuIds>,
        args: &ValidateArgs,
        checked: &mut Vec<(PathBuf, Role, Subsystem)>,
    ) {
        let d = conf.dir(sub, &self.root);
        let dir = d.dir.clone();
        let host_dir = match dir.strip_prefix(&self.root) {
            Ok(rel) => Path::new("/").join(rel),
            Err(_) => dir.clone(),
        };
        self.pass_id(
            S,
            &format!("{sub}.dir"),
            format!("Checking {sub} directory"),
            Some(&dir),
            format!("{} ({}; checked because {why})", dir.display(), d.why()),
        );
        // Something that is not a directory (libvirt takes /etc/pki/libvirt-<sub> whatever
        // its type): QEMU cannot read files below it; it must go, or the key must be set.
        if dir.exists() && !dir.is_dir() {
            let fix = match d.origin {
                DirOrigin::Implicit => format!(
                    "rm {} (its mere existence takes {sub} away from default_tls_x509_cert_dir), \
                     or set {} in qemu.conf",
                    shell_path(&dir),
                    sub.dir_key()
                ),
                _ => format!(
                    "rm {} and create the directory: virtpki install --qemu --subsystem {} \
                     --ca-dir CA --from DIR",
                    shell_path(&dir),
                    install_subsystem(sub)
                ),
            };
            return self.push_id(
                S,
                &format!("{sub}.dir_exists"),
                format!("Checking {sub} directory exists"),
                State::Fail,
                Some(&dir),
                format!(
                    "{} is not a directory: QEMU fails with \"Unable to access credentials {}/\
                     ca-cert.pem: Not a directory\"",
                    dir.display(),
                    host_dir.display()
                ),
                Some(fix),
            );
        }
        if !dir.is_dir() {
            return self.push_id(
                S,
                &format!("{sub}.dir_exists"),
                format!("Checking {sub} directory exists"),
                State::Fail,
                Some(&dir),
                format!(
                    "{} is not a directory: QEMU fails with \"Unable to access credentials {}/\
                     ca-cert.pem: No such file or directory\"",
                    dir.display(),
                    host_dir.display()
                ),
                Some(format!(
                    "virtpki install --qemu --subsystem {} --ca-dir CA --from DIR",
                    install_subsystem(sub)
                )),
            );
        }
        if d.origin == DirOrigin::Implicit && is_empty_dir(&dir) {
            self.push_id(
                S,
                &format!("{sub}.implicit_dir"),
                format!("Checking {sub} directory"),
                State::Warn,
                Some(&dir),
                format!(
                    "{} is empty, yet its existence takes {sub} away from \
                     default_tls_x509_cert_dir",
                    host_dir.display()
                ),
                Some(format!(
                    "remove it (rmdir {}) or install {sub}'s files into it",
                    shell_path(&dir)
                )),
            );
        }
        if let Some(ids) = ids {
            self.qemu_access(sub, "dir", &dir, FileKind::Dir, ids);
        }
        // AppArmor judges the path the kernel resolves: links followed, under the root.
        let root = std::fs::canonicalize(&self.root).unwrap_or_else(|_| self.root.clone());
        let resolved = std::fs::canonicalize(&dir)
            .ok()
            .and_then(|c| c.strip_prefix(&root).ok().map(|r| Path::new("/").join(r)));
        self.qemu_apparmor(sub, resolved.as_deref().unwrap_or(&host_dir));
        self.qemu_verify(conf, sub);
        if let Some(uuid) = conf.secret_uuid(sub) {
            self.push_id(
                S,
                &format!("{sub}.secret"),
                format!("Checking {sub} key passphrase"),
                State::Info,
                None,
                format!(
                    "the key is decrypted with libvirt secret {} ({}): virtpki cannot check \
                     that the passphrase opens it",
                    uuid.value,
                    conf.location(uuid.line)
                ),
                Some(
                    "make sure the secret exists (virsh secret-list) and holds the key's \
                     passphrase"
                        .into(),
                ),
            );
        }
        let roles = match sub.qemu_role() {
            QemuRole::Server => vec![Role::Server],
            QemuRole::Client => vec![Role::Client],
            QemuRole::Both => vec![Role::Server, Role::Client],
            QemuRole::Either => {
                let present: Vec<Role> = [Role::Server, Role::Client]
                    .into_iter()
                    .filter(|r| dir.join(format!("{}-cert.pem", r.name())).exists())
                    .collect();
                if present.is_empty() {
                    vec![Role::Server]
                } else {
                    present
                }
            }
        };
        if !roles.contains(&Role::Server) && dir.join("ca-crl.pem").exists() {
            self.push_id(
                S,
                &format!("{sub}.crl"),
                format!("Checking {sub} CRL"),
                State::Info,
                Some(&dir.join("ca-crl.pem")),
                format!(
                    "QEMU is only a client in {sub}, and QEMU's clients never read ca-crl.pem: \
                     a revoked server certificate is still accepted"
                ),
                Some(
                    "revoke by re-issuing the server's certificate and removing the old one".into(),
                ),
            );
        }
        if roles.contains(&Role::Server) {
            self.qemu_names(conf, sub, &dir, args);
        }
        for role in roles {
            if let Some((_, _, first)) = checked.iter().find(|(p, r, _)| *p == dir && *r == role) {
                self.pass_id(
                    S,
                    &format!("{sub}.{}", role.name()),
                    format!("Checking {sub} {} files", role.name()),
                    Some(&dir),
                    format!("the same directory and role as {first}: checked above"),
                );
                continue;
            }
            checked.push((dir.clone(), role, sub));
            self.qemu_role_files(conf, sub, &dir, role, ids, args);
        }
    }

    /// The files of `role` in `dir`: present, readable by QEMU, passing QEMU's checks.
    fn qemu_role_files(
        &mut self,
        conf: &QemuConf,
        sub: Subsystem,
        dir: &Path,
        role: Role,
        ids: Option<&QemuIds>,
        args: &ValidateArgs,
    ) {
        let r = role.name();
        let files = locations::qemu_dir(dir, role);
        let cert = dir.join(format!("{r}-cert.pem"));
        let key = dir.join(format!("{r}-key.pem"));
        // A lone half of the client pair: QEMU up to 10.1 ignores it, 10.2 refuses it.
        if role == Role::Client && cert.exists() != key.exists() {
            let (has, lacks) = if cert.exists() {
                (&cert, &key)
            } else {
                (&key, &cert)
            };
            self.push_id(
                S,
                &format!("{sub}.{r}.pair"),
                format!("Checking {sub} {r} pair"),
                State::Warn,
                Some(has),
                format!(
                    "{} is there without {}: QEMU <= 10.1 ignores it and connects without a \
                     certificate; QEMU >= 10.2 refuses the directory",
                    has.display(),
                    lacks.display()
                ),
                Some("install the pair: virtpki install --qemu --role client ...".into()),
            );
        }
        let client_needed = role == Role::Client
            && (sub == Subsystem::Migrate || sub == Subsystem::Chardev)
            && conf.verify(sub).is_some_and(|v| v.value);
        if role == Role::Client && !cert.exists() && !key.exists() {
            let (state, message) = if client_needed {
                (
                    State::Fail,
                    format!(
                        "no {r}-cert.pem in {}: QEMU connects without a certificate, and the \
                         peer (which verifies, {}_tls_x509_verify) refuses it",
                        dir.display(),
                        sub
                    ),
                )
            } else {
                (
                    State::Info,
                    format!(
                        "no {r}-cert.pem in {}: QEMU connects without a certificate; servers \
                         that verify clients refuse it",
                        dir.display()
                    ),
                )
            };
            self.push_id(
                S,
                &format!("{sub}.{r}.cert"),
                format!("Checking {sub} {r} cert"),
                state,
                Some(&cert),
                message,
                Some(format!(
                    "virtpki install --qemu --subsystem {} --role client --ca-dir CA --from DIR",
                    install_subsystem(sub)
                )),
            );
        }
        let ctx = Context::new(ContextFlags::NO_SANITY);
        let _ = ctx.set_expiry_horizon(self.warn_days);
        let mut loaded_all = true;
        for f in &files.files {
            if !f.path.exists() {
                if f.required {
                    loaded_all = false;
                    self.push_id(
                        S,
                        &format!("{sub}.{r}.missing"),
                        format!("Checking {sub} {}", f.ty),
                        State::Fail,
                        Some(&f.path),
                        format!(
                            "{} is missing: QEMU fails with \"Unable to access credentials {}: \
                             No such file or directory\"",
                            f.path.display(),
                            f.path.display()
                        ),
                        Some(format!(
                            "virtpki install --qemu --subsystem {} --role {r} --ca-dir CA \
                             --from DIR",
                            install_subsystem(sub)
                        )),
                    );
                }
                continue;
            }
            if let Some(ids) = ids {
                let item = match f.ty {
                    CertDataType::CaCert => "ca_cert",
                    CertDataType::CaCrl => "ca_crl",
                    CertDataType::ServerKey | CertDataType::ClientKey => "key",
                    _ => "cert",
                };
                self.qemu_access(
                    sub,
                    &format!("{r}.{item}"),
                    &f.path,
                    FileKind::of(f.ty),
                    ids,
                );
            }
            if let Err(e) = ctx.add_file(f.ty, &f.path) {
                loaded_all = false;
                let msg = e.to_string();
                // An encrypted key: QEMU opens it with the passphrase of the libvirt secret
                // qemu.conf names (passwordid=), and fails without one.
                let encrypted = f.ty.content() == virtpki::data_type::Content::PrivateKey
                    && read_file(&f.path).is_ok_and(|r| qemu::is_encrypted_pkcs8(&r.bytes));
                if encrypted {
                    let (state, message, fix) = match conf.secret_uuid(sub) {
                        Some(uuid) => (
                            State::Info,
                            format!(
                                "{} is encrypted: QEMU decrypts it with libvirt secret {} ({}); \
                                 virtpki cannot open it, so it checks neither the key nor its \
                                 match with the certificate",
                                f.path.display(),
                                uuid.value,
                                conf.location(uuid.line)
                            ),
                            "make sure the secret holds the key's passphrase (virsh \
                             secret-get-value UUID)"
                                .to_owned(),
                        ),
                        None => (
                            State::Fail,
                            format!(
                                "{} is encrypted and qemu.conf names no secret for {sub}: QEMU \
                                 fails with \"Cannot load certificate ... & key '{}': \
                                 Decryption has failed.\"",
                                f.path.display(),
                                f.path.display()
                            ),
                            crate::install_qemu::secret_fix(&conf.secret_settings(sub)),
                        ),
                    };
                    self.push_id(
                        S,
                        &format!("{sub}.{r}.load"),
                        format!("Loading {sub} {}", f.ty),
                        state,
                        Some(&f.path),
                        message,
                        Some(fix),
                    );
                    continue;
                }
                if self.reported.insert(msg.clone()) {
                    self.push_id(
                        S,
                        &format!("{sub}.{r}.load"),
                        format!("Loading {sub} {}", f.ty),
                        State::Fail,
                        Some(&f.path),
                        msg,
                        Some(format!(
                            "look at it with `virtpki show {}` and install the right file",
                            shell_path(&f.path)
                        )),
                    );
                }
            }
        }
        // QEMU's server loads dh-params.pem when it is there; a bad one fails the directory.
        let dh = dir.join("dh-params.pem");
        if role == Role::Server && sub != Subsystem::Spice && dh.exists() {
            let verdict = read_file(&dh).and_then(|r| sanity::check_qemu_dh_params(&r.bytes));
            let id = format!("{sub}.{r}.dh_params");
            let name = format!("Checking {sub} DH parameters");
            match verdict {
                Ok(()) => self.pass_id(
                    S,
                    &id,
                    name,
                    Some(&dh),
                    format!(
                        "{}: DH parameters (QEMU >= 10.2 deprecates the file and uses the \
                         RFC 7919 groups without it)",
                        dh.display()
                    ),
                ),
                Err(why) => {
                    loaded_all = false;
                    self.push_id(
                        S,
                        &id,
                        name,
                        State::Fail,
                        Some(&dh),
                        format!(
                            "QEMU fails with \"Unable to load DH parameters from {}\": {why}",
                            dh.display()
                        ),
                        Some(format!(
                            "rm {} (QEMU needs no DH parameters file; QEMU >= 10.2 deprecates \
                             it), or replace it with certtool --generate-dh-params output",
                            shell_path(&dh)
                        )),
                    );
                }
            }
        }
        let creds = ctx.credentials();
        let now = virtpki::timefmt::now();
        let mut any = false;
        for qf in sanity::check_qemu(&creds, role, now, self.warn_days) {
            let f = &qf.finding;
            if f.rule == virtpki::Rule::Missing {
                continue;
            }
            if !self.reported.insert(format!("{}|{}", f.source, f.message)) {
                continue;
            }
            any = true;
            let mut message = f.message.clone();
            if let Some(subject) = &f.subject {
                message.push_str(&format!(" (subject {subject})"));
            }
            self.add(Check {
                id: format!("{sub}.{r}.cert_properties.{}", f.rule).replace('-', "_"),
                scope: S,
                name: format!("Checking {sub} {r} cert properties: {}", f.rule),
                state: State::from(f.severity),
                file: f.source.path().map(Path::to_path_buf),
                message,
                fix: Some(f.fix.clone()),
                rule: Some(f.rule.to_string()),
                libvirt: f.libvirt_differs.clone(),
                qemu: note_for(sub, qf.qemu.clone()),
            });
        }
        let own = creds.identity(role).certificate().cloned();
        if !any && loaded_all && own.is_some() {
            self.pass_id(
                S,
                &format!("{sub}.{r}.cert_properties"),
                format!("Checking {sub} {r} cert properties"),
                None,
                format!("QEMU's load-time checks pass for the {r} (endpoint={r})"),
            );
        }
        let _ = args;
        // Further identities (server-cert-N.pem, QEMU >= 10.2): each checked on its own, with
        // the same CA, as QEMU checks each.
        for (n, (cert, key)) in files.extra_identities.iter().enumerate() {
            let tag = format!("{r}.identity{}", n + 2);
            self.push_id(
                S,
                &format!("{sub}.{tag}"),
                format!("Checking {sub} {r} identity {}", n + 2),
                State::Info,
                Some(cert),
                format!(
                    "{} and {}: read by QEMU >= 10.2 only (earlier versions ignore them)",
                    cert.display(),
                    key.display()
                ),
                Some("keep an identity every peer accepts as the unnumbered pair".into()),
            );
            if let Some(ids) = ids {
                self.qemu_access(sub, &format!("{tag}.cert"), cert, FileKind::Public, ids);
                self.qemu_access(
                    sub,
                    &format!("{tag}.key"),
                    key,
                    FileKind::of(role.key_type()),
                    ids,
                );
            }
            let one = Context::new(ContextFlags::NO_SANITY);
            let _ = one.set_expiry_horizon(self.warn_days);
            for f in files.files.iter().filter(|f| {
                f.ty.content() != virtpki::data_type::Content::PrivateKey
                    && f.ty != role.cert_type()
            }) {
                let _ = one.add_file(f.ty, &f.path);
            }
            let loaded = one
                .add_file(role.cert_type(), cert)
                .and(one.add_file(role.key_type(), key));
            if let Err(e) = loaded {
                self.push_id(
                    S,
                    &format!("{sub}.{tag}.load"),
                    format!("Loading {sub} {r} identity {}", n + 2),
                    State::Fail,
                    Some(cert),
                    e.to_string(),
                    Some(format!(
                        "look at it with `virtpki show {}`",
                        shell_path(cert)
                    )),
                );
                continue;
            }
            let found = sanity::check_qemu(&one.credentials(), role, now, self.warn_days);
            for qf in found
                .into_iter()
                .filter(|f| f.finding.rule != virtpki::Rule::Missing)
            {
                if !self
                    .reported
                    .insert(format!("{}|{}", qf.finding.source, qf.finding.message))
                {
                    continue;
                }
                let f = qf.finding;
                self.add(Check {
                    id: format!("{sub}.{tag}.cert_properties.{}", f.rule).replace('-', "_"),
                    scope: S,
                    name: format!(
                        "Checking {sub} {r} identity {} properties: {}",
                        n + 2,
                        f.rule
                    ),
                    state: State::from(f.severity),
                    file: f.source.path().map(Path::to_path_buf),
                    message: f.message,
                    fix: Some(f.fix),
                    rule: Some(f.rule.to_string()),
                    libvirt: f.libvirt_differs,
                    qemu: note_for(sub, qf.qemu),
                });
            }
        }
        // Numbered files QEMU never reads (after a gap, above 3, with a leading zero) or refuses (half a numbered
        // pair); the unnumbered half pair and "needs 10.2" next to an unnumbered pair are said
        // above already. Numbered identities without the unnumbered server pair: QEMU before
        // 10.2 refuses the directory, said here.
        for note in locations::qemu_identity_notes(dir, role) {
            let kind = match note.kind {
                QemuIdentityNoteKind::Gap => "gap",
                QemuIdentityNoteKind::BeyondMax => "beyond_max",
                QemuIdentityNoteKind::LeadingZero => "leading_zero",
                QemuIdentityNoteKind::HalfPair if note.path != cert && note.path != key => {
                    "half_pair"
                }
                QemuIdentityNoteKind::NeedsQemu10_2 if !cert.exists() => "needs_qemu_10_2",
                _ => continue,
            };
            self.push_id(
                S,
                &format!("{sub}.{r}.identities.{kind}"),
                format!("Checking {sub} {r} numbered identities"),
                State::from(note.severity),
                Some(&note.path),
                note.message,
                Some(note.fix),
            );
        }
    }

    /// The server certificate of `dir` against every name peers reach `sub` by: --hostname,
    /// and for migration `migration_host` (else this machine's names).
    fn qemu_names(&mut self, conf: &QemuConf, sub: Subsystem, dir: &Path, args: &ValidateArgs) {
        // The first identity QEMU loads: server-cert.pem, else (QEMU >= 10.2) server-cert-0.pem.
        let files = locations::qemu_dir(dir, Role::Server);
        let Some(path) = files
            .files
            .iter()
            .find(|f| f.ty == CertDataType::ServerCert)
            .map(|f| f.path.clone())
        else {
            return;
        };
        let ctx = Context::new(ContextFlags::NO_SANITY);
        if ctx.add_file(CertDataType::ServerCert, &path).is_err() {
            return;
        }
        let Some(cert) = ctx.credentials().server.certificate().cloned() else {
            return;
        };
        let mut names = args.hostname.clone();
        let mut missing = State::Warn;
        if sub == Subsystem::Migrate {
            if let Some(h) = conf.migration_host() {
                names.push(h.value);
                // Peers migrate to exactly this name: a mismatch fails every migration.
                missing = State::Fail;
            }
        }
        names.dedup();
        self.hostname_in(S, &format!("{sub}.hostname"), &cert, &names, missing);
    }

    /// Owner and mode of `path` against QEMU's user.
    fn qemu_access(
        &mut self,
        sub: Subsystem,
        item: &str,
        path: &Path,
        kind: FileKind,
        ids: &QemuIds,
    ) {
        let id = format!("{sub}.{item}_mode");
        let name = format!("Checking {sub} {} access", item.replace('.', " "));
        match file_audit::audit_qemu_path(path, kind, ids) {
            Err(e) => self.push_id(
                S,
                &id,
                name,
                State::Fail,
                Some(path),
                format!("cannot stat {}: {e}", path.display()),
                None,
            ),
            Ok((stat, None)) => self.pass_id(
                S,
                &id,
                name,
                Some(path),
                format!(
                    "{}: owner {}:{}, mode {:04o}; QEMU ({}) can read it",
                    path.display(),
                    stat.uid,
                    stat.gid,
                    stat.mode,
                    ids.label
                ),
            ),
            Ok((_, Some(f))) => self.push_id(
                S,
                &id,
                name,
                State::from(f.severity),
                Some(path),
                f.message,
                Some(f.fix),
            ),
        }
    }

    /// Debian's AppArmor profile lets QEMU read only some directories.
    fn qemu_apparmor(&mut self, sub: Subsystem, host_dir: &Path) {
        if qemu::apparmor_allows(host_dir) {
            return;
        }
        let abstraction = self.root.join("etc/apparmor.d/abstractions/libvirt-qemu");
        let active = abstraction.exists()
            || (self.root == Path::new("/") && Path::new("/sys/module/apparmor").exists());
        let (state, message) = if active {
            (
                State::Warn,
                format!(
                    "{} is outside the directories Debian's AppArmor profile lets QEMU read \
                     (/etc/pki/qemu, /etc/pki/libvirt-vnc, /etc/pki/libvirt-spice): QEMU may \
                     be denied",
                    host_dir.display()
                ),
            )
        } else {
            (
                State::Info,
                format!(
                    "{} is outside Debian's AppArmor profile for QEMU; AppArmor is not active \
                     here, so this matters only on AppArmor hosts",
                    host_dir.display()
                ),
            )
        };
        self.push_id(
            S,
            &format!("{sub}.apparmor"),
            format!("Checking {sub} AppArmor"),
            state,
            None,
            message,
            Some(qemu::apparmor_fix(host_dir)),
        );
    }

    /// `<sub>_tls_x509_verify`: verification off is a warning.
    fn qemu_verify(&mut self, conf: &QemuConf, sub: Subsystem) {
        let (Some(key), Some(v)) = (sub.verify_key(), conf.verify(sub)) else {
            return;
        };
        let by = match &v.set_by {
            Some((k, line)) => format!("{k} at {}", conf.location(*line)),
            None => format!("libvirt's default for {sub}"),
        };
        let id = format!("{sub}.verify");
        let name = format!("Checking {key}");
        if v.value {
            return self.pass_id(
                S,
                &id,
                name,
                None,
                format!("QEMU's {sub} server verifies its clients' certificates ({by})"),
            );
        }
        self.push_id(
            S,
            &id,
            name,
            State::Warn,
            None,
            format!(
                "verification is switched off ({by}): QEMU's {sub} server asks no certificate of \
                 its clients, so anyone who reaches the port is served"
            ),
            Some(format!(
                "set {key} = 1 in qemu.conf and give each client a certificate of this CA \
                 (virtpki issue client); then restart the domains"
            )),
        );
    }
}

/// `--subsystem` of install for `sub` (vxhs has none: the default directory).
/// The QEMU note of a finding in `sub`'s directory: SPICE's files are loaded by
/// spice-server (OpenSSL), not by QEMU's tls-creds-x509, so QEMU's load-time rules and their
/// versions do not apply there.
fn note_for(sub: Subsystem, note: Option<String>) -> Option<String> {
    if sub != Subsystem::Spice {
        return note;
    }
    Some(
        "SPICE: QEMU hands these files to spice-server (OpenSSL), not to its tls-creds-x509 \
         object, so QEMU's load-time checks do not apply; SPICE clients still verify the \
         certificate"
            .into(),
    )
}

fn install_subsystem(sub: Subsystem) -> &'static str {
    match sub {
        Subsystem::Vxhs => "default",
        s => s.name(),
    }
}

fn is_empty_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none())
}

/// The bytes of the file at `path`, read as every credential file is ([`fsutil::read_regular`]:
/// a FIFO never blocks, a socket, device or directory is said to be one); the caller names
/// the file. The bytes stay in the reader's wiped buffer: one of the files read is a private key.
fn read_file(path: &Path) -> Result<fsutil::ReadFile, String> {
    fsutil::read_regular(path, fsutil::Follow::Yes, crate::files::MAX_FILE_SIZE)
        .map_err(|e| e.to_string())
}

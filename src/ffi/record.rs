//! Recording a server's certificate after the handshake, for validators that answer later.

use std::ffi::{c_int, c_uint};

use super::session::{virPKISessionPtr, with_session};
use super::{bad_value, guard};

/// Client side: records the server's certificate for the session's own host and port in its
/// context's known-servers store, exactly as a validator's VIR_CONNECT_CERT_ACCEPT_ALWAYS does
/// during the handshake (the same store, replacing that host and port's entry; the store's
/// errors are VIR_PKI_ERR_STORE). For an application whose validator answers after the
/// handshake (an asynchronous prompt): it answers VIR_CONNECT_CERT_ACCEPT_ONCE inside it, then,
/// once the user chose "always", calls this. Only what the validator was asked about and
/// accepted in this session's completed handshake is recorded: -1 with
/// VIR_PKI_ERR_INVALID_ARG for a server session, a handshake not done, a certificate the
/// validator was not asked about (no validator, a pinned certificate), a context with no
/// known-servers store or with another one than the validator was asked against (set or
/// replaced since: it may hold another certificate for the host, which the validator was not
/// warned of), flags other than 0, or a call from inside the validator during this session's
/// handshake (it is not done yet: answer VIR_CONNECT_CERT_ACCEPT_ALWAYS there);
/// a failed handshake's own error. Safe from any thread; the session is unchanged.
#[no_mangle]
pub unsafe extern "C" fn virPKISessionRecordPeer(s: virPKISessionPtr, flags: c_uint) -> c_int {
    guard(-1, || {
        if flags != 0 {
            return Err(bad_value("flags", flags));
        }
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        unsafe { with_session(s, |session| session.record_peer().map(|_| 0)) }
    })
}

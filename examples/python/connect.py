#!/usr/bin/env python3
"""Connect to a libvirt-style TLS server the way the certificate-management proposal does.

    connect.py --ca cacert.pem --cert clientcert.pem --key clientkey.pem HOST:PORT
               [--trust once|always|never] [--known-servers FILE]

Loads the CA certificate, the client certificate and its key, sets a certificate validator
that shows the server's certificate and asks whether to trust it (or answers from --trust),
connects over TCP, verifies the server in a TLS session that waits for libvirt's
confirmation byte, and says what happened. Exit status 0 when connected, 1 when not.

Run from the source tree it finds the package in ../../python and the library in target/
(or set VIRTPKI_LIBRARY to libvirtpki.so).
"""

import argparse
import os
import socket
import sys

try:
    import virtpki
except ImportError:
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(here, "..", "..", "python"))
    import virtpki

ANSWERS = {
    "once": virtpki.ValidatorResult.ACCEPT_ONCE,
    "always": virtpki.ValidatorResult.ACCEPT_ALWAYS,
    "never": virtpki.ValidatorResult.REJECT,
}


def parse_address(address):
    """HOST:PORT, [IPv6]:PORT -> (host as given, host to connect to, port)."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, not {address!r}")
    return host, host.strip("[]"), int(port)


def ask(question):
    """A one-letter answer from the terminal (stdin); end of input means no."""
    while True:
        print(question, end=" ", flush=True)
        line = sys.stdin.readline()
        if not line:
            print()
            return "never"
        for answer in ANSWERS:
            if line.strip().lower() in (answer, answer[0]):
                return answer
        print("Please answer o(nce), a(lways) or n(ever).")


class Validator:
    """Shows the certificate, asks (or answers from --trust) and remembers the answer."""

    def __init__(self, trust):
        self.trust = trust
        self.answer = None

    def __call__(self, hostname, cert_pem, trusted, flags):
        print(f"The server {hostname} presents this certificate:")
        for line in virtpki.describe(cert_pem).splitlines():
            print("    " + line)
        if flags & virtpki.ValidateFlags.UNVERIFIED:
            print("It could NOT be verified against your CA certificates.")
        if trusted:
            print(f"You already trust this certificate for {hostname}.")
        elif flags & virtpki.ValidateFlags.CHANGED:
            renewal = flags & virtpki.ValidateFlags.SAME_KEY
            print(
                f"WARNING: {hostname} was trusted with a different certificate"
                + (" (this one has the same key: a renewal?)." if renewal else ".")
            )
        else:
            print(f"It is not known for {hostname} yet.")
        question = "Trust it? o(nce), a(lways), n(ever):"
        if self.trust is None:
            self.answer = ask(question)
        else:
            self.answer = self.trust
            print(f"{question} {self.answer} (--trust)")
        return ANSWERS[self.answer]


def describe_acceptance(answer, known_servers):
    if answer is None:
        return "the certificate is pinned, nobody was asked"
    if answer == "always" and known_servers:
        return f"the certificate was accepted and recorded in {known_servers}"
    return "the certificate was accepted for this connection"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--ca", required=True, help="CA certificate(s), PEM or DER")
    parser.add_argument("--cert", required=True, help="client certificate")
    parser.add_argument("--key", required=True, help="client private key")
    parser.add_argument("--trust", choices=ANSWERS, help="answer without asking")
    parser.add_argument("--known-servers", metavar="FILE", help="where 'always' is recorded")
    parser.add_argument("address", type=parse_address, metavar="HOST:PORT")
    args = parser.parse_args()
    hostname, connect_host, port = args.address

    validator = Validator(args.trust)
    stage = "Loading the credentials"
    try:
        with virtpki.Context() as ctx:
            ctx.add_cert_data_file(virtpki.CertDataType.CA_CERT, args.ca)
            ctx.add_cert_data_file(virtpki.CertDataType.CLIENT_CERT, args.cert)
            ctx.add_cert_data_file(virtpki.CertDataType.CLIENT_KEY, args.key)
            if args.known_servers:
                stage = "Opening the known-servers file"
                ctx.set_known_servers_file(args.known_servers)
            ctx.set_validator(validator)

            print(f"Connecting to {hostname} port {port}...")
            stage = f"Connection to {hostname}:{port}"
            with socket.create_connection((connect_host, port)) as sock:
                sock.settimeout(None)  # the library does blocking I/O
                with virtpki.Session.client(ctx, sock, hostname, port, confirm=True) as session:
                    how = describe_acceptance(validator.answer, args.known_servers)
                    print(f"Connected to {hostname}:{port}: {how}.")
                    print(f"Server: {session.peer_dn()}")
    except virtpki.VirtPKIError as e:
        print(f"{stage} failed: {e.c_name} ({e.code:d}): {e.message}")
        if e.__cause__ is not None:
            print(f"(the validator raised {e.__cause__!r})")
        return 1
    except OSError as e:
        print(f"{stage} failed: {e}")
        return 1
    return 0

if __name__ == "__main__":
    sys.exit(main())

//! Gives the shared library its soname, as a C library has: libvirtpki.so.0.
fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libvirtpki.so.0");
}

#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| virtpki_fuzz::targets::pem_input(data));

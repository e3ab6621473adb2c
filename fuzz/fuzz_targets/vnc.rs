#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| virtpki_fuzz::targets::vnc(data));

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rgi_fuzz_targets::target("scgi").expect("a target")(data);
});

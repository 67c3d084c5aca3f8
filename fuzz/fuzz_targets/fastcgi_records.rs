#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rgi_fuzz_targets::target("fastcgi_records").expect("a target")(data);
});

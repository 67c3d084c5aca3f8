#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rgi_fuzz_targets::target("input").expect("a target")(data);
});

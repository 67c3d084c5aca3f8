#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rgi_fuzz_targets::target("static_path").expect("a target")(data);
});

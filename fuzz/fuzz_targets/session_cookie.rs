#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rgi_fuzz_targets::target("session_cookie").expect("a target")(data);
});

#![no_main]
// Body shared with the proptests: protocol_tests::fuzz_group.
libfuzzer_sys::fuzz_target!(|data: &[u8]| protocol_tests::fuzz_group(data));

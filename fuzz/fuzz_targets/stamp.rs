#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| dynamowave_harness::fuzzing::stamp(data));

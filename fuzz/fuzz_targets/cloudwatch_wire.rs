#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| dynamowave_local::fuzzing::cloudwatch_wire(data));

//! Arbitrary bytes as what a client sends on one connection: `checks::check_http_input`.
#![no_main]

// The same files the delivery example serves; this target calls only a part of them.
#[allow(dead_code)]
#[path = "../../examples/delivery/api_parse.rs"]
mod api_parse;
#[allow(dead_code)]
#[path = "../checks.rs"]
mod checks;
#[allow(dead_code)]
#[path = "../../examples/delivery/http_parse.rs"]
mod http_parse;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_http_input(data));

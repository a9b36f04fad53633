//! Every Kafka record a stage consumes goes through `decode_valid`: arbitrary bytes must
//! come back as an event or a `SchemaError`, never as a panic (a panic dead-letters the
//! record only after unwinding through the stage, and aborts a build with panic=abort) nor
//! an allocation the record cannot justify (which aborts the process).
//!
//! And what it accepts, trackiq must be able to write again: stages re-emit what they read
//! (a run's start inside its summary, a summary inside its verdict), so an event that
//! decodes and validates but does not encode, or comes back different, would fail a stage
//! on a record the contract let in.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trackiq_schemas::registry;

fuzz_target!(|data: &[u8]| {
    let Ok(event) = registry().decode_valid(data) else { return };
    let bytes = registry().encode_any(&event).unwrap_or_else(|e| panic!("a valid {} does not encode: {e}", event.name()));
    let again = registry().decode_valid(&bytes).unwrap_or_else(|e| panic!("a re-encoded {} does not decode: {e}", event.name()));
    // Validated events hold no NaN, so equality is meaningful.
    assert_eq!(again, event, "a {} changed on the way through trackiq's encoder", event.name());
});

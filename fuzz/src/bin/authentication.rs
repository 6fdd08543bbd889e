//! AFL++ harness for the `authentication` target (see docs/FUZZING.md): SASL messages, TLS
//! handshake bytes and certificate subjects, each input under the allocation oracle.

#[global_allocator]
static ALLOCATOR: starling_fuzz::oracle::CountingAllocator =
    starling_fuzz::oracle::CountingAllocator;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        starling_fuzz::Target::Authentication.run_checked(data);
    });
}

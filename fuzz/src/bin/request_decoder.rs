//! AFL++ harness for the `request_decoder` target (see docs/FUZZING.md): every input runs under the
//! allocation oracle, so a panic or an allocation beyond the bound aborts and AFL saves the input.

#[global_allocator]
static ALLOCATOR: starling_fuzz::oracle::CountingAllocator =
    starling_fuzz::oracle::CountingAllocator;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        starling_fuzz::Target::RequestDecoder.run_checked(data);
    });
}

//! `starling-fuzz`: replay inputs through a fuzz target, run the bounded mutation campaign,
//! and write the seed corpus. Every run goes through the allocation oracle.
//!
//! ```text
//! starling-fuzz replay <target> <file or directory>...
//! starling-fuzz mutate <target> <iterations> <seed> <file or directory>...
//! starling-fuzz seeds <corpus directory>
//! starling-fuzz show <coordinator input>
//! ```
//!
//! `replay` prints `run <path>` before and `ok <path> <largest allocation>` after each file, so
//! a caller can tell which file killed the process if one aborts (an allocation refused by the
//! oracle aborts); a panic is reported as `panic <path>` and the replay goes on. `mutate`
//! stops at the first failure, whose input is printed in hex (`starling-fuzz input-hex: ...`),
//! and at an input that runs for more than 5 s (a hang). `show` prints a coordinator input as
//! the script of operations it stands for.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use starling_fuzz::mutate::{mutate, Rng};
use starling_fuzz::oracle::CountingAllocator;
use starling_fuzz::{seeds, Target};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("replay") if args.len() >= 3 => replay(target(&args[1]), &args[2..]),
        Some("mutate") if args.len() >= 5 => mutate_run(
            target(&args[1]),
            args[2].parse().expect("iterations"),
            args[3].parse().expect("seed"),
            &args[4..],
        ),
        Some("seeds") if args.len() == 2 => write_seeds(Path::new(&args[1])),
        Some("show") if args.len() == 2 => show_script(Path::new(&args[1])),
        _ => {
            eprintln!(
                "usage: starling-fuzz replay <target> <path>...\n       \
                 starling-fuzz mutate <target> <iterations> <seed> <path>...\n       \
                 starling-fuzz seeds <corpus directory>\n       \
                 starling-fuzz show <coordinator input>\n\
                 targets: request_decoder, record_batch, coordinator, authentication"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("starling-fuzz: {e}");
            ExitCode::FAILURE
        }
    }
}

fn target(name: &str) -> Target {
    Target::from_name(name).unwrap_or_else(|| {
        eprintln!("unknown target {name}");
        std::process::exit(2)
    })
}

/// The files named, directories expanded (sorted, not recursive; hidden files skipped).
fn files(paths: &[String]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for path in paths {
        let path = PathBuf::from(path);
        if path.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(&path)
                .map_err(|e| format!("{}: {e}", path.display()))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .filter(|p| {
                    !p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                })
                .collect();
            entries.sort();
            out.extend(entries);
        } else {
            out.push(path);
        }
    }
    Ok(out)
}

fn replay(target: Target, paths: &[String]) -> Result<(), String> {
    let mut panicked = Vec::new();
    for path in files(paths)? {
        let data = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("run {}", path.display());
        let outcome = std::panic::catch_unwind(|| target.run_checked(&data).largest);
        match outcome {
            Ok(largest) => println!("ok {} {largest}", path.display()),
            Err(_) => {
                println!("panic {}", path.display());
                panicked.push(path);
            }
        }
    }
    if panicked.is_empty() {
        Ok(())
    } else {
        Err(format!("{} input(s) panicked", panicked.len()))
    }
}

fn mutate_run(target: Target, iterations: u64, seed: u64, paths: &[String]) -> Result<(), String> {
    let mut corpus = Vec::new();
    for path in files(paths)? {
        corpus.push(std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?);
    }
    if corpus.is_empty() {
        corpus.push(Vec::new());
    }
    let mut rng = Rng::new(seed);
    let started = Instant::now();
    let mut largest = 0usize;
    let mut input = Vec::new();
    let watchdog = Watchdog::start(target);
    for _ in 0..iterations {
        input.clear();
        input.extend_from_slice(&corpus[rng.below(corpus.len())]);
        mutate(&mut rng, &mut input, &corpus);
        watchdog.running(&input);
        largest = largest.max(target.run_checked(&input).largest);
    }
    println!(
        "mutate {}: {iterations} inputs from {} seeds in {:.1} s, largest allocation {largest} bytes",
        target.name(),
        corpus.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// How long one input may run before the mutation run calls it a hang.
const HANG: Duration = Duration::from_secs(5);

/// Ends the process, printing the input, if one input runs longer than [`HANG`].
struct Watchdog {
    current: Arc<Mutex<(Instant, Vec<u8>)>>,
}

impl Watchdog {
    fn start(target: Target) -> Watchdog {
        let current = Arc::new(Mutex::new((Instant::now(), Vec::new())));
        let watched = Arc::clone(&current);
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(250));
            let (since, input) = &*watched.lock().unwrap();
            if since.elapsed() > HANG {
                eprintln!(
                    "starling-fuzz: {} ran one input for more than {} s (a hang)",
                    target.name(),
                    HANG.as_secs()
                );
                starling_fuzz::oracle::write_hex_line(input);
                std::process::exit(3);
            }
        });
        Watchdog { current }
    }

    fn running(&self, input: &[u8]) {
        let mut current = self.current.lock().unwrap();
        current.0 = Instant::now();
        current.1.clear();
        current.1.extend_from_slice(input);
    }
}

fn show_script(path: &Path) -> Result<(), String> {
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let script = starling_fuzz::coordinator::script::Script::read(&data);
    println!("{:?}", script.settings);
    for op in script.ops {
        println!("{op:?}");
    }
    Ok(())
}

fn write_seeds(dir: &Path) -> Result<(), String> {
    for target in Target::ALL {
        let out = dir.join(target.name());
        std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
        let seeds = seeds::for_target(target);
        for (name, bytes) in &seeds {
            let path = out.join(name);
            std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        println!(
            "{}: {} seeds in {}",
            target.name(),
            seeds.len(),
            out.display()
        );
    }
    Ok(())
}

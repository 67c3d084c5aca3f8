//! examples/hello's application bare, or under the standard middleware stack with
//! `--standard-stack DIR` (its access log goes to `DIR/access.log`): what bench/ compares to price
//! the stack. Every other flag is the launcher's.
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let flag = args.iter().position(|a| a == "--standard-stack");
    let Some(at) = flag else {
        return rgi_servers::run_from(example_hello::Hello::default(), args);
    };
    let Some(dir) = args.get(at + 1).map(PathBuf::from) else {
        eprintln!("stackhello: --standard-stack needs a directory (for access.log)");
        return ExitCode::from(2);
    };
    args.drain(at..at + 2);
    match rgi_tests::stack::standard(&dir) {
        Ok(stack) => rgi_servers::run_from(stack.app(example_hello::Hello::default()), args),
        Err(e) => {
            eprintln!("stackhello: {e}");
            ExitCode::from(2)
        }
    }
}

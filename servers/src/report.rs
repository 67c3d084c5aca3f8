//! An error as one line: its own message, then each cause's (`source()`), joined by `: `. Every
//! error type of this crate prints its own message only and names its cause through `source()`,
//! so that nothing is printed twice however the error is wrapped.

use std::error::Error;
use std::fmt;

/// `error` and its causes as one line (`cannot listen on 127.0.0.1:80: Permission denied`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Report<'a>(pub(crate) &'a (dyn Error + 'static));

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(e) = cause {
            write!(f, ": {e}")?;
            cause = e.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("cannot listen on 127.0.0.1:80")
        }
    }

    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn each_message_appears_once_in_order() {
        let e = Outer(std::io::Error::other("permission denied"));
        assert_eq!(
            Report(&e).to_string(),
            "cannot listen on 127.0.0.1:80: permission denied"
        );
    }
}

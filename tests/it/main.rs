//! The integration test binary: runs the real `imagelock` executable and the
//! library against servers the tests start on 127.0.0.1.

mod cli;
mod common;
mod conda;

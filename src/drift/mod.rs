//! Compare a fresh resolution with a lock and report what moved upstream.
//!
//! Not built yet: `imagelock drift` says so and exits with code 2.

//! Pure solving: conda (rattler) and Python (PubGrub). No I/O here.

pub mod conda;
pub mod python;

//! Pure solving: conda (rattler), Python (PubGrub) and apt (a port of apt's
//! own marking). No I/O here.

pub mod apk;
pub mod apt;
pub mod conda;
pub mod python;
pub mod rpm;

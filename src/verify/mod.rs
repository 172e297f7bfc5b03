//! Compare an image's catalogue with its lock.

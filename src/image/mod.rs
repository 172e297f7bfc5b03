//! Image sources and the streaming layer reader shared by freeze and verify.

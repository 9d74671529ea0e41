//! Per-core shards of a fleet (see `fleet` for the orchestration).

pub mod wheel;

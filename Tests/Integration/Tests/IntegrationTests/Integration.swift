import Testing

/// Host integration tests: real runc, real mounts, a real dockerd. They run as root and one at a
/// time (they share the machine's mount table and cgroups).
@Suite(.serialized) enum Integration {}

/// The guest agent: kernel probes, engine configuration, settings, the engine API filter and
/// its proxy, and the guest ends of the host channel.
public enum ECIAgentModule {}

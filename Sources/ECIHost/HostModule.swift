/// The host side of `ecibuild run`: booting the image under QEMU, the VM's state directory,
/// and the host docker socket served through the tunnel.
public enum ECIHostModule {}

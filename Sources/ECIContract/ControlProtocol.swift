import ECICore

/// The constants both halves of ECI agree on: the protocol version of the control contract,
/// the names of the virtio-serial ports and the fw_cfg key that carries the admin's settings.
///
/// The host (`ecibuild run`) and the guest (`eci-agent`) import this module and nothing else of
/// each other, so a change to what they say to each other is a change here, seen by both.
public enum ControlProtocol {
    /// The version of the control contract: every request and reply carries it. Raise it when a
    /// request or a reply changes shape incompatibly; a peer on another version gets a clear
    /// `.protocolVersion` error instead of a half-understood answer.
    public static let version = 1

    /// The virtio-serial port of control requests (`/dev/virtio-ports/eci.control` in the guest).
    public static let controlPortName = "eci.control"
    /// The virtio-serial port of the engine API tunnel.
    public static let tunnelPortName = "eci.tunnel"
    /// Where a virtio-serial port appears in the guest (udev names it after the port).
    public static func guestPortPath(_ name: String) -> String { "/dev/virtio-ports/" + name }

    /// The QEMU fw_cfg key of the admin's settings passed by the host at boot.
    public static let settingsFirmwareKey = "opt/eci/admin-settings.json"
    /// Where the guest kernel's qemu_fw_cfg driver shows that key's contents.
    public static let settingsFirmwarePath = "/sys/firmware/qemu_fw_cfg/by_name/" + settingsFirmwareKey + "/raw"
}

extension ECIError.Code {
    /// The peer speaks another version of the control contract.
    public static let protocolVersion = ECIError.Code("protocol-version")
    /// A message on the control port or the admin socket does not follow the contract.
    public static let malformedMessage = ECIError.Code("malformed-message")
    /// The peer understood the request and answered with an error.
    public static let peerError = ECIError.Code("peer-error")
}

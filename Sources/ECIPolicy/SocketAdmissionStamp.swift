import ECICore
import ECIOCI

/// The stamp the engine API filter puts on a container it admits to mount the engine socket,
/// and that eci-runc checks at every create, including the creates the engine makes by itself
/// (restart policies, `live-restore`), which are no API requests and so never meet the filter.
///
/// The stamp is an annotation, `org.eci.socket-admission` = hex HMAC-SHA-256(run key,
/// `message`), which the engine (API >= 1.43) stores in `HostConfig.Annotations` and copies into
/// the OCI spec's `annotations` at every start. The run key is derived at boot from a master key
/// that never leaves the VM's root-only state and from the digest of the ECI settings in force:
/// a container admitted under other settings carries a stamp that no longer verifies, so its
/// next create fails until it is created again (and so admitted again) through the filter.
///
/// The message is fixed: the filter cannot know the container's ID (the engine assigns it
/// after the filter decided), and the image a container was admitted for is not in the OCI
/// spec. What makes a stamp worth anything is that only the filter writes it: annotations under
/// `reservedPrefix` are refused in every request, so a stamp can't be copied onto another
/// container through the API; the raw engine socket is root-only.
public enum SocketAdmissionStamp {
    /// The annotation that carries the stamp.
    public static let annotation = "org.eci.socket-admission"
    /// Annotations under this prefix are ECI's: refused when a caller supplies them.
    public static let reservedPrefix = "org.eci."
    /// The run key's file name, in ECI's state directory (`/run/eci` in the VM): a name the
    /// agent (which writes it at boot) and eci-runc (which reads it at create) share, so the
    /// runtime needs no new configuration key; see `SocketAdmissionCheck`.
    public static let runKeyFileName = "socket-admission.key"
    /// The persistent master key's file name, in `/var/lib/eci` (root-only, 0600).
    public static let masterKeyFileName = "socket-admission.master"
    /// The engine copies `HostConfig.Annotations` into the spec only for requests at API 1.43
    /// or later (it drops the field for older versions): admitted creates are forwarded at
    /// least at this version.
    public static let minimumAPIVersion = "1.43"
    /// What is MACed: a fixed, versioned text (see the type's documentation for why).
    public static let message: [UInt8] = Array("org.eci.socket-admission/v1".utf8)

    /// The stamp for `runKey`.
    public static func stamp(runKey: [UInt8]) -> String {
        hexString(hmacSHA256(key: runKey, message: message))
    }

    /// Refuses a missing or wrong stamp; `what` names the container's socket mount in messages.
    public static func verify(_ stamp: String?, runKey: [UInt8], socket: String) throws {
        guard let stamp, !stamp.isEmpty else {
            throw ECIError(
                .refused,
                "enhanced container isolation: this container mounts the engine socket \(socket) but was not admitted by the engine API filter (no admission stamp); create it again through the filter")
        }
        let expected = Array(Self.stamp(runKey: runKey).utf8)
        guard constantTimeEquals(Array(stamp.utf8), expected) else {
            throw ECIError(
                .refused,
                "enhanced container isolation: this container's admission to mount the engine socket \(socket) does not hold under the settings in force (it was admitted under other settings); create it again through the filter")
        }
    }

    /// The run key for a boot: HMAC(master key, digest of the ECI settings in force).
    public static func runKey(masterKey: [UInt8], settingsDigest: [UInt8]) -> [UInt8] {
        hmacSHA256(key: masterKey, message: Array("org.eci.socket-admission.run-key/v1\n".utf8) + Array(hexString(settingsDigest).utf8))
    }

    /// The digest of the ECI settings in an admin-settings.json: its `enhancedContainerIsolation`
    /// member, serialized (key order kept, whitespace dropped), so that Docker Desktop's other
    /// keys and reformatting do not invalidate admissions while any change to ECI's does.
    public static func settingsDigest(_ settingsFile: [UInt8]) throws -> [UInt8] {
        let document = try JSONValue.parse(settingsFile)
        return SHA256.hash(Array((document["enhancedContainerIsolation"] ?? .null).serialized().utf8))
    }

    /// A key file's contents: 64 hex digits and a newline.
    public static func encodeKey(_ key: [UInt8]) -> [UInt8] { Array((hexString(key) + "\n").utf8) }

    /// Reads a key file's contents (`encodeKey`'s format); `source` names it in errors.
    public static func decodeKey(_ bytes: [UInt8], source: String) throws -> [UInt8] {
        let text = String(decoding: bytes, as: UTF8.self).trimmingSuffix { $0 == "\n" }
        guard text.utf8.count == 2 * SHA256.digestSize else {
            throw ECIError(.invalidArgument, "\(source): not a key (expected \(2 * SHA256.digestSize) hex digits)")
        }
        var key: [UInt8] = []
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            guard let byte = UInt8(text[index..<next], radix: 16) else { throw ECIError(.invalidArgument, "\(source): not a key (not hex)") }
            key.append(byte)
            index = next
        }
        return key
    }

    /// Whether API version `version` (e.g. "1.41") is below `minimum`, compared as the engine
    /// does (dot-separated numbers; an unparsable part counts as 0).
    public static func isBelow(_ version: String, _ minimum: String) -> Bool {
        let a = version.split(separator: ".", omittingEmptySubsequences: false).map { Int($0) ?? 0 }
        let b = minimum.split(separator: ".", omittingEmptySubsequences: false).map { Int($0) ?? 0 }
        for i in 0..<max(a.count, b.count) {
            let x = i < a.count ? a[i] : 0
            let y = i < b.count ? b[i] : 0
            if x != y { return x < y }
        }
        return false
    }
}

extension String {
    fileprivate func trimmingSuffix(while predicate: (Character) -> Bool) -> String {
        var end = endIndex
        while end > startIndex, predicate(self[index(before: end)]) { end = index(before: end) }
        return String(self[..<end])
    }
}

import ECICore
import ECIPolicy
import Glibc

extension AgentPaths {
    /// The run key of this boot (0600): what the filter stamps socket admissions with and
    /// eci-runc checks them against. In the runtime's state directory under the name both share.
    public var socketAdmissionRunKey: String { stateDirectory + "/" + SocketAdmissionStamp.runKeyFileName }
    /// The master key (0600, created once): the run key is derived from it and the settings.
    public var socketAdmissionMasterKey: String { persistentDirectory + "/" + SocketAdmissionStamp.masterKeyFileName }
}

/// The keys behind socket-admission stamps (`SocketAdmissionStamp`): a persistent master key,
/// created once, and the run key derived from it at each boot for the ECI settings in force.
/// Same settings, same run key: containers admitted before a reboot keep working; other
/// settings, another key: containers admitted under the old ones fail their next create.
public enum SocketAdmissionKeys {
    /// At boot (`eci-agent prepare`), before the engine starts: reads or creates the master key,
    /// writes the run key for `settingsFile` (the bytes of the settings in force).
    public static func install(paths: AgentPaths, settingsFile: [UInt8]) throws {
        let master = try masterKey(paths: paths)
        let runKey = SocketAdmissionStamp.runKey(masterKey: master, settingsDigest: try SocketAdmissionStamp.settingsDigest(settingsFile))
        try FileSystem.makeDirectories(paths.stateDirectory, mode: 0o711)
        try FileSystem.writeAtomically(paths.socketAdmissionRunKey, SocketAdmissionStamp.encodeKey(runKey), mode: 0o600)
    }

    /// The run key `install` wrote (the filter stamps with it).
    public static func runKey(paths: AgentPaths) throws -> [UInt8] {
        try readKey(paths.socketAdmissionRunKey, owner: paths.trustedOwner)
    }

    /// The master key, created (32 random bytes, 0600, in a 0700 directory) when absent. An
    /// existing one that anyone but root could have read or written, or that is malformed, is an
    /// error: the engine then stays stopped (remove the file to make a new key; every container
    /// that mounts the socket must then be created again).
    static func masterKey(paths: AgentPaths) throws -> [UInt8] {
        try FileSystem.makeDirectories(paths.persistentDirectory, mode: 0o700)
        guard chmod(paths.persistentDirectory, 0o700) == 0 else { throw ECIError.system("chmod \(paths.persistentDirectory)", errno: errno) }
        let path = paths.socketAdmissionMasterKey
        if FileSystem.exists(path) { return try readKey(path, owner: paths.trustedOwner) }
        let key = try randomBytes(SHA256.digestSize)
        try FileSystem.writeAtomically(path, SocketAdmissionStamp.encodeKey(key), mode: 0o600)
        return key
    }

    /// A key file: `owner`'s (root in the VM), mode 0600 (or stricter), in `encodeKey`'s format.
    static func readKey(_ path: String, owner: uid_t) throws -> [UInt8] {
        var st = stat()
        guard lstat(path, &st) == 0 else {
            let err = errno
            throw err == ENOENT ? ECIError(.notFound, "\(path) does not exist (eci-agent prepare writes it at boot)") : ECIError.system("stat \(path)", errno: err)
        }
        guard st.st_mode & S_IFMT == S_IFREG, st.st_uid == owner, st.st_mode & 0o077 == 0 else {
            throw ECIError(.refused, "\(path) must be a regular file owned by root, mode 0600 (owner \(st.st_uid), mode \(String(st.st_mode & 0o7777, radix: 8)))")
        }
        return try SocketAdmissionStamp.decodeKey(try FileSystem.read(path), source: path)
    }

    /// `count` bytes from the kernel's random source.
    static func randomBytes(_ count: Int) throws -> [UInt8] {
        let fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ECIError.system("open /dev/urandom", errno: errno) }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let n = try Syscall.retrying("read /dev/urandom") { bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress?.advanced(by: filled), count - filled) } }
            guard n > 0 else { throw ECIError.system("read /dev/urandom", errno: EIO) }
            filled += n
        }
        return bytes
    }
}

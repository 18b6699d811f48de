import ECITestSupport
import Foundation

/// Test images made on the host, no registry: a busybox root filesystem with the escape-attempt
/// program and a unix-socket HTTP client, as
/// - `eci-e2e/tools:1`, a `docker load` archive written here, so its image ID (the digest of
///   its configuration) is known before the VM boots and can be allow-listed by digest;
/// - `eci-e2e/plain`, the same files through `docker import` (another ID, not allow-listed).
struct E2EFixtures: Sendable {
    static let toolsImage = "eci-e2e/tools:1"
    static let plainImage = "eci-e2e/plain"

    let toolsArchive: String
    let plainTarball: String
    /// "sha256:…" of the tools image.
    let toolsID: String
    let buildContext: String

    static func make(in work: String) throws -> E2EFixtures {
        let rootfs = work + "/rootfs"
        try TestSupport.makeBusyboxRootfs(at: rootfs)
        for dir in ["mnt", "var/run", "srv"] { try FileManager.default.createDirectory(atPath: rootfs + "/" + dir, withIntermediateDirectories: true) }
        for program in ["escape-attempts", "unix-http", "flip-names", "ecid-jail"] {
            let built = try TestSupport.run(["/usr/bin/cc", "-static", "-O2", "-pthread", "-o", rootfs + "/bin/" + program, TestSupport.repositoryRoot + "/Tests/Fixtures/\(program).c"])
            guard built.status == 0 else { throw TestFailure("building \(program): \(built.stderr)") }
        }
        let layer = work + "/layer.tar"
        try check(TestSupport.run(["/bin/tar", "--sort=name", "--owner=0", "--group=0", "--numeric-owner", "--mtime=@0", "-C", rootfs, "-cf", layer, "."]), "tar the rootfs")
        let diffID = try sha256(layer)
        let config = #"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin:/sbin:/usr/bin"],"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:\#(diffID)"]},"history":[{"created_by":"eci-e2e fixtures"}]}"#
        let archive = work + "/tools-archive"
        try FileManager.default.createDirectory(atPath: archive + "/layer", withIntermediateDirectories: true)
        let configPath = work + "/config.json"
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
        let id = try sha256(configPath)
        try FileManager.default.copyItem(atPath: configPath, toPath: archive + "/\(id).json")
        try FileManager.default.copyItem(atPath: layer, toPath: archive + "/layer/layer.tar")
        try #"[{"Config":"\#(id).json","RepoTags":["\#(toolsImage)"],"Layers":["layer/layer.tar"]}]"#.write(toFile: archive + "/manifest.json", atomically: true, encoding: .utf8)
        let toolsArchive = work + "/tools.tar"
        try check(TestSupport.run(["/bin/tar", "-C", archive, "-cf", toolsArchive, "."]), "tar the image archive")

        let context = work + "/build"
        try FileManager.default.createDirectory(atPath: context, withIntermediateDirectories: true)
        try "FROM \(toolsImage)\nCOPY greeting /greeting\nRUN echo built-in-the-vm > /built && chmod 0644 /built\n".write(toFile: context + "/Dockerfile", atomically: true, encoding: .utf8)
        try "hello from the build context\n".write(toFile: context + "/greeting", atomically: true, encoding: .utf8)
        return E2EFixtures(toolsArchive: toolsArchive, plainTarball: layer, toolsID: "sha256:" + id, buildContext: context)
    }

    /// ECI's settings for the run: the tools image (by digest) may mount the socket; through that
    /// socket, image commands are denied.
    func settings() -> String {
        #"{"enhancedContainerIsolation":{"dockerSocketMount":{"imageList":{"images":["eci-e2e/tools@\#(toolsID)"]},"commandList":{"type":"deny","commands":["image*"]}}}}"#
    }

    static func sha256(_ path: String) throws -> String {
        let result = try TestSupport.run(["/usr/bin/sha256sum", path])
        guard result.status == 0 else { throw TestFailure("sha256sum \(path): \(result.stderr)") }
        return String(result.stdout.prefix(64))
    }

    static func check(_ result: TestSupport.Output, _ what: String) throws {
        guard result.status == 0 else { throw TestFailure("\(what): \(result.stderr)") }
    }
}

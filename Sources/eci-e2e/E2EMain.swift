// eci-e2e: the VM end-to-end tests (make e2e). Builds the default image (the root filesystem is
// cached), boots it with `ecibuild run --detach`, drives it with the real docker CLI through the
// host socket, and ends with `N passed, N failed`. Per-case logs and the console log are kept.
import ECITestSupport
import Foundation

@main
enum E2EMain {
    static func main() {
        var arguments = Array(CommandLine.arguments.dropFirst())
        func option(_ name: String) -> String? {
            guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
            defer { arguments.removeSubrange(index...(index + 1)) }
            return arguments[index + 1]
        }
        let only = option("--only")
        let logs = option("--logs") ?? TestSupport.repositoryRoot + "/.e2e-logs"
        let imageDirectory = option("--image") ?? "/var/tmp/eci-e2e-image"
        guard arguments.isEmpty else {
            FileHandle.standardError.write(Data("usage: eci-e2e [--image DIR] [--logs DIR] [--only NAME[,NAME...]]\n".utf8))
            exit(2)
        }
        guard getuid() == 0 else {
            FileHandle.standardError.write(Data("eci-e2e: must run as root (it builds and boots the VM image)\n".utf8))
            exit(1)
        }
        do {
            let ecibuild = try TestSupport.binary("ecibuild")
            try? FileManager.default.removeItem(atPath: logs)
            try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
            let work = try TestSupport.temporaryDirectory("e2e")
            defer { try? FileManager.default.removeItem(atPath: work) }
            let harness = E2EHarness(ecibuild: ecibuild, imageDirectory: imageDirectory, work: work, logs: logs)
            harness.say("building the image into \(imageDirectory)")
            let built = try TestSupport.run([ecibuild, "image", "-o", imageDirectory, "--quiet"])
            guard built.status == 0 else {
                harness.say("ecibuild image failed: \(built.stderr)")
                print("0 passed, 1 failed")
                exit(1)
            }
            let fixtures = try E2EFixtures.make(in: work)
            let settings = work + "/admin-settings.json"
            try fixtures.settings().write(toFile: settings, atomically: true, encoding: .utf8)
            let status = harness.run(cases: E2ECases.all + E2EEscapeCases.all + E2EAttackCases.all + E2EEcidCases.all, fixtures: fixtures, settings: settings, only: only)
            try? FileManager.default.removeItem(atPath: work)
            exit(status)
        } catch {
            FileHandle.standardError.write(Data("eci-e2e: \(error)\n".utf8))
            print("0 passed, 1 failed")
            exit(1)
        }
    }
}

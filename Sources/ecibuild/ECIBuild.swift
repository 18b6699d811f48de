// ecibuild: builds the ECI VM image and checks kernel configurations.
import ArgumentParser
import ECICore
import ECIImage
import Foundation

@main
struct ECIBuild: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ecibuild",
        abstract: "Build the ECI VM image, run it, and check kernels against ECI's requirements.",
        subcommands: [ImageCommand.self, RunCommand.self, StatusCommand.self, StopCommand.self, KernelCommand.self, DebugCommand.self])
}

/// Paths relative to the repository when ecibuild runs from ./bin.
enum Defaults {
    static var binDirectory: String {
        let exe = (try? FileSystem.realPath("/proc/self/exe")) ?? "./bin/ecibuild"
        return parentDirectory(exe)
    }
    static var repository: String { parentDirectory(binDirectory) }
    static var cacheDirectory: String {
        let env = ProcessInfo.processInfo.environment
        if let xdg = env["XDG_CACHE_HOME"] { return xdg + "/eci" }
        return (env["HOME"] ?? "/root") + "/.cache/eci"
    }
}

/// `--kernel-config DIR`, shared by the commands that read the fragments.
struct KernelConfigOption: ParsableArguments {
    @Option(name: .customLong("kernel-config"), help: "The kernel-config fragments directory (default: kernel-config/ in the repository).")
    var path: String?

    var directory: String { path ?? Defaults.repository + "/kernel-config" }
}

struct ImageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "image", abstract: "Build the ECI VM disk from a spec.")

    @Argument(help: "The image spec (default: image/eci.yaml in the repository).")
    var spec: String?

    @Option(name: .shortAndLong, help: "Output directory (replaced only once the build has succeeded).")
    var output: String = "out"

    @Option(help: "Where the ECI binaries to install are (default: beside ecibuild).")
    var binDir: String?

    @OptionGroup var kernelConfig: KernelConfigOption

    @Option(help: "Where the mmdebstrap result is cached.")
    var cacheDir: String?

    @Flag(help: "No progress on standard error.")
    var quiet = false

    @Option(help: "Final summary format: text or json.")
    var format: String = "text"

    func run() throws {
        guard format == "text" || format == "json" else { throw ValidationError("--format must be text or json") }
        let epoch = ProcessInfo.processInfo.environment["SOURCE_DATE_EPOCH"].flatMap { UInt64($0) }
        let builder = ImageBuilder(options: .init(
            specPath: spec ?? Defaults.repository + "/image/eci.yaml", outputDirectory: output, binDirectory: binDir ?? Defaults.binDirectory,
            kernelConfigDirectory: kernelConfig.directory, cacheDirectory: cacheDir ?? Defaults.cacheDirectory,
            quiet: quiet, sourceDateEpoch: epoch))
        do {
            let manifest = try builder.build()
            LastImage.record(output)
            if format == "json" {
                print(manifest.json)
            } else {
                print("built the ECI image in \(output): kernel \(manifest.kernel.release), \(manifest.packages.count) packages")
                for output in manifest.outputs { print("  \(output.file)  \(output.bytes >> 20) MiB  sha256:\(output.sha256.prefix(16))") }
            }
        } catch let error as ECIError {
            FileHandle.standardError.write(Data("ecibuild: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

struct KernelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "kernel", abstract: "Kernel configuration.", subcommands: [KernelCheckCommand.self])
}

struct KernelCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check a kernel .config (or a built image's kernel) against kernel-config/.",
        discussion: "Every option is reported as required or optional, and =y, =m or missing. An =m option counts only if the module is in the image and loaded at boot, which only --image can show. Exits non-zero when a required option is missing.")

    @Argument(help: "A kernel .config file.")
    var config: String?

    @Option(help: "A directory made by `ecibuild image`: checks its kernel, modules included.")
    var image: String?

    @OptionGroup var kernelConfig: KernelConfigOption

    func validate() throws {
        guard (config == nil) != (image == nil) else { throw ValidationError("give either a CONFIG file or --image DIR") }
    }

    func run() throws {
        do {
            let fragments = try KernelFragments.load(directory: kernelConfig.directory)
            let report: KernelCheckReport
            if let config {
                let text = try FileSystem.readText(config)
                let release = text.split(separator: "\n").first { $0.hasPrefix("# Linux/") }.flatMap { $0.split(separator: " ").dropFirst(2).first }.map(String.init)
                report = KernelCheckReport.check(KernelConfigFile(text: text), fragments: fragments, version: release.flatMap(KernelVersion.init), modules: nil)
            } else {
                report = try ImageKernel.check(imageDirectory: image ?? "", fragments: fragments)
            }
            print(report.text)
            if !report.passed { throw ExitCode(1) }
        } catch let error as ECIError {
            FileHandle.standardError.write(Data("ecibuild: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

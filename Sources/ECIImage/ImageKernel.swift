import ECICore
import Foundation

/// The kernel of a built image, read back from its output directory (`eci-kernel.config` and
/// the module lists in `manifest.json`), for `ecibuild kernel check --image DIR`.
public enum ImageKernel {
    public static let configFile = "eci-kernel.config"

    public static func check(imageDirectory: String, fragments: KernelFragments) throws -> KernelCheckReport {
        let config = KernelConfigFile(text: try FileSystem.readText(join(imageDirectory, configFile)))
        let data = Data(try FileSystem.read(join(imageDirectory, "manifest.json")))
        let manifest: Manifest
        do {
            manifest = try JSONDecoder().decode(Manifest.self, from: data)
        } catch {
            throw ECIError(.invalidState, "\(imageDirectory)/manifest.json is not an ecibuild manifest", cause: error)
        }
        let modules = KernelModules(available: Set(manifest.kernel.modulesAvailable), loadedAtBoot: Set(manifest.kernel.modulesLoadedAtBoot))
        return KernelCheckReport.check(config, fragments: fragments, version: KernelVersion(manifest.kernel.release), modules: modules)
    }
}

import ECICore
import ECITestSupport
import Testing

@testable import ECIImage

@Suite struct ImageSpecTests {
    func parse(_ text: String) throws -> ImageSpec {
        try ImageSpec.parse(text, name: "spec.yaml", directory: "/specs")
    }

    func error(_ text: String) -> String {
        do {
            _ = try parse(text)
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    @Test func theDefaultImageSpecParses() throws {
        let spec = try ImageSpec.load(TestSupport.repositoryRoot + "/image/eci.yaml")
        #expect(spec.suite == "trixie")
        #expect(spec.kernelPackage == "linux-image-cloud-amd64")
        #expect(spec.packages.contains("docker.io") && spec.packages.contains("runc"))
        #expect(spec.cmdline.contains("console=ttyS0"))
        #expect(spec.diskSize == 4 << 30 && spec.bootSize == 128 << 20)
        #expect(spec.outputs == [.raw, .qcow2, .kernel, .initrd, .cmdline])
        #expect(spec.eciBinaries == ["eci-runc", "eci-agent", "ecid", "eci-init"])
        #expect(spec.files.allSatisfy { $0.path.hasPrefix("/") })
        // The engine is reachable only through the agent: its own socket unit never starts.
        #expect(spec.maskServices == ["docker.socket"])
        #expect(spec.enableServices.contains("eci-prepare.service") && spec.enableServices.contains("eci-agent.service"))
        // ECI's syscall supervisor runs, and eci-runc requires it (fail closed).
        #expect(spec.enableServices.contains("ecid.service"))
        #expect(spec.files.contains { $0.path == "/etc/eci/runtime.json" })
    }

    /// `make bench` boots this beside the ECI image: it must share everything that decides the
    /// cached root filesystem and the disk, and carry none of ECI's binaries or units.
    @Test func theBenchmarkPlainSpecMatchesTheImageWithoutECI() throws {
        let eci = try ImageSpec.load(TestSupport.repositoryRoot + "/image/eci.yaml")
        let plain = try ImageSpec.load(TestSupport.repositoryRoot + "/Tests/Benchmarks/plain-image.yaml")
        #expect(plain.suite == eci.suite && plain.mirror == eci.mirror && plain.variant == eci.variant)
        #expect(plain.kernelPackage == eci.kernelPackage && plain.cmdline == eci.cmdline)
        #expect(plain.packages.sorted() == eci.packages.sorted())
        #expect(plain.diskSize == eci.diskSize && plain.bootSize == eci.bootSize)
        #expect(RootfsCache(directory: "/c", spec: plain, sourceDateEpoch: nil).key == RootfsCache(directory: "/c", spec: eci, sourceDateEpoch: nil).key)
        #expect(plain.eciBinaries.isEmpty)
        #expect(plain.files.contains { $0.path == "/etc/docker/daemon.json" && $0.contents == "{}\n" })
        #expect(!plain.enableServices.contains { $0.hasPrefix("eci-agent") || $0.hasPrefix("eci-prepare") })
        #expect(plain.enableServices.contains("docker.socket") && plain.maskServices.isEmpty)
        for file in plain.files {
            if let source = file.source { #expect(FileSystem.exists(plain.directory + "/" + source), "\(source)") }
        }
    }

    @Test func anEmptyBinaryListMeansNone() throws {
        #expect(try parse("eci:\n  binaries: []\n").eciBinaries == [])
    }

    @Test func defaultsApplyToAnEmptyishSpec() throws {
        let spec = try parse("suite: bookworm\n")
        #expect(spec.suite == "bookworm" && spec.variant == "minbase" && spec.defaultRuntime == "eci")
    }

    @Test func unknownKeysNameTheFieldAndLine() {
        #expect(error("suite: trixie\nsweet: 1\n").contains("spec.yaml (line 2): unknown key \"sweet\""))
        #expect(error("disk:\n  size: 4G\n  colour: red\n").contains("(line 3): unknown key \"disk.colour\""))
        #expect(error("files:\n  - path: /a\n    contents: x\n    owner: root\n").contains("(line 4): unknown key \"files[0].owner\""))
    }

    @Test func wrongTypesNameTheFieldAndLine() {
        #expect(error("packages: docker.io\n").contains("(line 1): packages must be a list"))
        #expect(error("kernel:\n  package: [a, b]\n").contains("(line 2): kernel.package must be a string"))
        #expect(error("disk: 4G\n").contains("disk must be a mapping"))
        #expect(error("outputs: [raw, iso]\n").contains("unknown output \"iso\""))
        #expect(error("disk:\n  size: lots\n").contains("(line 2): disk.size must be a size"))
        #expect(error("files:\n  - path: /a\n    contents: x\n    mode: rwx\n").contains("(line 4): files[0].mode must be octal"))
    }

    @Test func filesAreValidated() {
        #expect(error("files:\n  - contents: x\n").contains("files[0].path is required"))
        #expect(error("files:\n  - path: etc/x\n    contents: x\n").contains("must be an absolute path"))
        #expect(error("files:\n  - path: /etc/../x\n    contents: x\n").contains("without \"..\""))
        #expect(error("files:\n  - path: /x\n").contains("exactly one of source and contents"))
        #expect(error("files:\n  - path: /x\n    source: a\n    contents: b\n").contains("exactly one of source and contents"))
    }

    @Test func namesAndSizesAreValidated() {
        #expect(error("packages: [\"docker.io; rm -rf /\"]\n").contains("is not a valid Debian name"))
        #expect(error("disk:\n  size: 600M\n  bootSize: 128M\n").contains("must leave at least 512M"))
        #expect(error("suite: trixie\nsuite: bookworm\n").contains("duplicate key") || error("suite: trixie\nsuite: bookworm\n").contains("YAML"))
        #expect(error("").contains("empty"))
        #expect(error("[a, b]").contains("the spec must be a mapping"))
        #expect(error("a: [b").contains("not valid YAML"))
    }
}

@Suite struct KernelCheckTests {
    static let fragment = """
        # Test fragment.
        CONFIG_USER_NS=y
        # module: overlay
        CONFIG_OVERLAY_FS=y
        CONFIG_SECCOMP_FILTER=y
        # optional: nice to have
        CONFIG_IKCONFIG=y
        # CONFIG_DEBUG_ME is not set
        """

    var fragments: KernelFragments {
        get throws { KernelFragments(requirements: try KernelFragments.parseFragment(Self.fragment, name: "t.conf"), minimumVersion: try version("6.3")) }
    }

    func version(_ text: String) throws -> KernelVersion { try #require(KernelVersion(text)) }

    @Test func fragmentsCarryModulesAndOptionality() throws {
        let requirements = try fragments.requirements
        #expect(requirements.map(\.option) == ["CONFIG_USER_NS", "CONFIG_OVERLAY_FS", "CONFIG_SECCOMP_FILTER", "CONFIG_IKCONFIG", "CONFIG_DEBUG_ME"])
        #expect(requirements[1].module == "overlay" && requirements[0].module == nil)
        #expect(requirements[3].optional && !requirements[2].optional)
        #expect(requirements[4].value == "n")
        #expect(requirements[2].origin == "t.conf:5")
    }

    @Test func badFragmentLinesAreErrors() {
        #expect(throws: ECIError.self) { try KernelFragments.parseFragment("CONFIG_X\n", name: "b.conf") }
        #expect(throws: ECIError.self) { try KernelFragments.parseFragment("USER_NS=y\n", name: "b.conf") }
    }

    @Test func theRepositoryFragmentsLoad() throws {
        let loaded = try KernelFragments.load(directory: TestSupport.repositoryRoot + "/kernel-config")
        #expect(loaded.minimumVersion == (try version("6.3")))
        #expect(loaded.requirements.contains { $0.option == "CONFIG_USER_NS" })
        #expect(loaded.requirements.contains { $0.option == "CONFIG_SECCOMP_FILTER" })
        #expect(loaded.requirements.contains { $0.option == "CONFIG_OVERLAY_FS" && $0.module == "overlay" })
    }

    @Test func aGoodKernelPasses() throws {
        let config = KernelConfigFile(text: "CONFIG_USER_NS=y\nCONFIG_OVERLAY_FS=m\nCONFIG_SECCOMP_FILTER=y\n# CONFIG_IKCONFIG is not set\n")
        let modules = KernelModules(available: ["overlay", "fuse"], loadedAtBoot: ["overlay"])
        let report = KernelCheckReport.check(config, fragments: try fragments, version: KernelVersion("6.12.117+deb13-cloud-amd64"), modules: modules)
        #expect(report.passed)
        #expect(report.lines.map(\.status) == [.builtIn, .module, .builtIn, .missing, .builtIn])
        #expect(report.text.contains("kernel check passed"))
        #expect(report.text.contains("missing (optional)"))
    }

    @Test func aMissingOptionFails() throws {
        let config = KernelConfigFile(text: "CONFIG_USER_NS=y\nCONFIG_OVERLAY_FS=y\n")
        let report = KernelCheckReport.check(config, fragments: try fragments, version: KernelVersion("6.12"), modules: nil)
        #expect(!report.passed)
        #expect(report.failures.map(\.requirement.option) == ["CONFIG_SECCOMP_FILTER"])
        #expect(report.text.contains("kernel check FAILED"))
    }

    @Test func aModuleCountsOnlyIfPresentAndLoadedAtBoot() throws {
        let config = KernelConfigFile(text: "CONFIG_USER_NS=y\nCONFIG_OVERLAY_FS=m\nCONFIG_SECCOMP_FILTER=y\n")
        let f = try fragments
        #expect(!KernelCheckReport.check(config, fragments: f, version: KernelVersion("6.12"), modules: nil).passed)
        #expect(!KernelCheckReport.check(config, fragments: f, version: KernelVersion("6.12"), modules: .init(available: [], loadedAtBoot: ["overlay"])).passed)
        #expect(!KernelCheckReport.check(config, fragments: f, version: KernelVersion("6.12"), modules: .init(available: ["overlay"], loadedAtBoot: [])).passed)
        #expect(KernelCheckReport.check(config, fragments: f, version: KernelVersion("6.12"), modules: .init(available: ["overlay"], loadedAtBoot: ["overlay"])).passed)
        #expect(KernelCheckReport.modulesToLoad(config, fragments: f) == ["overlay"])
    }

    @Test func anOldKernelFails() throws {
        let config = KernelConfigFile(text: "CONFIG_USER_NS=y\nCONFIG_OVERLAY_FS=y\nCONFIG_SECCOMP_FILTER=y\n")
        let report = KernelCheckReport.check(config, fragments: try fragments, version: KernelVersion("6.1.0-30-amd64"), modules: nil)
        #expect(!report.versionOK && !report.passed)
        #expect(try version("6.12") > version("6.3"))
        #expect(try version("6.3.0") == version("6.3"))
    }
}

@Suite struct DiskLayoutTests {
    @Test func masterBootRecordBytes() throws {
        let mbr = MasterBootRecord(
            partitions: [.init(start: 2048, sectors: 262144, type: 0x0C, bootable: true), .init(start: 264192, sectors: 100, type: 0x83, bootable: false)],
            diskSignature: 0x1234_5678, bootCode: [0xEB, 0x63])
        let bytes = try mbr.bytes()
        #expect(bytes.count == 512)
        #expect(bytes[0] == 0xEB && bytes[1] == 0x63)
        #expect(Array(bytes[440..<444]) == [0x78, 0x56, 0x34, 0x12])
        #expect(bytes[446] == 0x80 && bytes[450] == 0x0C)
        #expect(Array(bytes[454..<458]) == [0x00, 0x08, 0x00, 0x00])
        #expect(Array(bytes[458..<462]) == [0x00, 0x00, 0x04, 0x00])
        #expect(bytes[462] == 0x00 && bytes[466] == 0x83)
        #expect(bytes[510] == 0x55 && bytes[511] == 0xAA)
        #expect(throws: ECIError.self) { try MasterBootRecord(partitions: [], diskSignature: 0, bootCode: Array(repeating: 0, count: 441)).bytes() }
    }

    @Test func uuidsComeFromTheSeed() {
        #expect(DiskWriter.uuid(fromHex: "0123456789abcdef0123456789abcdef") == "01234567-89ab-cdef-0123-456789abcdef")
    }

    @Test func manifestReadsInstalledPackages() {
        let status = "Package: a\nStatus: install ok installed\nVersion: 1.0\n\nPackage: b\nStatus: deinstall ok config-files\nVersion: 2\n\nPackage: c\nStatus: install ok installed\nVersion: 3:4-5\nDescription: x\n more\n"
        let packages = Manifest.parsePackages(status)
        #expect(packages.map(\.name) == ["a", "c"])
        #expect(packages.map(\.version) == ["1.0", "3:4-5"])
    }
}

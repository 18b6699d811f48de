import ECIOCI
import Testing

@testable import ECIPolicy

/// The filter's half of the symlink-blind roots: a source in an allowed root whose mounts still
/// follow symlinks is refused before the engine looks it up itself.
@Suite struct SymlinkBlindFilterTests {
    func decide(_ hostConfig: String, following: @escaping @Sendable (String) -> [String]) -> EngineAPIPolicy.Decision {
        var restricted = RestrictedMountPolicy.defaults
        restricted.allowedBindRoots = ["/srv", "/mnt"]
        let lookups = EngineAPIPolicy.Lookups(resolve: { [$0] }, image: { _ in nil }, candidateBases: { [] }, symlinkFollowingMounts: following)
        let policy = EngineAPIPolicy(origin: .user, settings: AdminSettings(socketMountImages: [], socketMountAnyImage: false, allowDerivedImages: false, commandList: CommandList(type: .deny, patterns: [])), restricted: restricted)
        return policy.decide(method: "POST", path: "/containers/create", query: [], body: Array(#"{"Image":"i","HostConfig":\#(hostConfig)}"#.utf8), lookups: lookups)
    }

    @Test func sourcesOnMountsThatFollowSymlinksAreRefused() {
        let following: @Sendable (String) -> [String] = { $0.hasPrefix("/mnt/disk") ? ["/mnt/disk"] : [] }
        if case let .refuse(_, message) = decide(#"{"Binds":["/mnt/disk/data:/d"]}"#, following: following) {
            #expect(message.contains("nosymfollow"), "\(message)")
        } else {
            Issue.record("a source on a mount that follows symlinks was forwarded")
        }
        if case .refuse = decide(#"{"Mounts":[{"Type":"bind","Source":"/mnt/disk","Target":"/d"}]}"#, following: following) {} else {
            Issue.record("--mount of a following mount was forwarded")
        }
        if case .refuse = decide(#"{"Binds":["/srv/app:/app"]}"#, following: following) {
            Issue.record("a source on a blind mount was refused")
        }
    }
}
